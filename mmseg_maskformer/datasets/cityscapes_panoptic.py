"""Cityscapes panoptic, as written by cityscapesScripts' ``createPanopticImgs.py``.

The annotation file is in the COCO panoptic format (see
:mod:`mmseg_maskformer.datasets.panoptic`) with the 19 evaluated Cityscapes
labels as categories (label ids 7 road .. 33 bicycle, or train ids 0..18 for
the ``_trainId`` variant); sorted by id, their contiguous labels are the
Cityscapes train ids 0..18, as detectron2's registration maps them, with the 8
things (person .. bicycle) at labels 11..18.

Only the image path differs from COCO: the ``file_name`` of an image entry
(``<image id>_gtFine_leftImg8bit.png``) names no file; the image is
``leftImg8bit/{split}/<city>/<image id>_leftImg8bit.png`` with ``<city>`` the
image id up to its last two ``_``-separated parts (``frankfurt_000000_000294``
-> ``frankfurt``), as detectron2 finds it.
"""
from mmengine.fileio import join_path

from mmseg_maskformer.registry import DATASETS
from .panoptic import PanopticFormatDataset


def cityscapes_city(image_id: str) -> str:
    """The city of a Cityscapes image id ``<city>_<sequence>_<frame>``.

    Raises:
        ValueError: When the id does not have the three parts.
    """
    parts = str(image_id).rsplit('_', 2)
    if len(parts) != 3 or not all(parts):
        raise ValueError(f'image id {image_id!r} is not <city>_<sequence>_<frame>')
    return parts[0]


@DATASETS.register_module()
class CityscapesPanopticDataset(PanopticFormatDataset):
    """Cityscapes panoptic in the layout of ``createPanopticImgs.py``.

    A :class:`PanopticFormatDataset` (same arguments, metainfo and data infos)
    whose ``img_path`` is ``data_prefix['img']/<city>/<image id><img_suffix>``
    instead of ``data_prefix['img']/<file_name>``.

    Args:
        img_suffix: Suffix of the image files after the image id.
        **kwargs: The arguments of :class:`PanopticFormatDataset`; typically
            ``data_prefix=dict(img='leftImg8bit/val/',
            seg='gtFine/cityscapes_panoptic_val/')`` and
            ``ann_file='gtFine/cityscapes_panoptic_val.json'``.

    Raises:
        ValueError: Besides :class:`PanopticFormatDataset`'s errors, for an
            image id that is not ``<city>_<sequence>_<frame>``.

    Example:
        >>> dataset = CityscapesPanopticDataset(
        ...     data_root='data/cityscapes', ann_file='gtFine/cityscapes_panoptic_val.json',
        ...     data_prefix=dict(img='leftImg8bit/val/', seg='gtFine/cityscapes_panoptic_val/'))
        >>> dataset[0]['img_path']
        'data/cityscapes/leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png'
    """

    def __init__(self, *args, img_suffix: str = '_leftImg8bit.png', **kwargs) -> None:
        self.img_suffix = img_suffix
        super().__init__(*args, **kwargs)

    def _parse_image(self, image: dict, annotation: dict, categories: dict) -> dict:
        """Build the data info of one image, with the Cityscapes image path.

        Args:
            image: Its entry of ``images``.
            annotation: Its entry of ``annotations``.
            categories: Original category id -> ``(label, isthing)``.

        Returns:
            The data info (see :class:`PanopticFormatDataset`).
        """
        info = super()._parse_image(image, annotation, categories)
        try:
            city = cityscapes_city(image['id'])
        except ValueError as err:
            raise ValueError(f'{self.ann_file}: {err}') from err
        info['img_path'] = join_path(self.data_prefix['img'], city,
                                     f'{image["id"]}{self.img_suffix}')
        return info
