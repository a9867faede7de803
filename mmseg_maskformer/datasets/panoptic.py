"""Datasets stored in the COCO panoptic format.

The format (used by COCO panoptic and by the ADE20K panoptic annotations that the
official Mask2Former preparation script writes) is one JSON file plus one RGB
PNG per image:

- ``categories``: ``{id, name, isthing, color?, supercategory?}``. COCO uses ids
  1..200 (80 things with ids < 92, then 53 stuff); ADE20K panoptic uses ids
  0..149 with things and stuff interleaved (100 things + 50 stuff).
- ``images``: ``{id, file_name, height, width}``; ADE20K image ids are strings.
- ``annotations``: one per image, ``{image_id, file_name, segments_info}``, where
  ``file_name`` names the panoptic PNG and every segment is ``{id, category_id,
  iscrowd, area, bbox}``. PNG pixels store the segment ``id`` as
  ``R + 256 * G + 256 ** 2 * B``; ``0`` is void.

Contiguous labels follow the category ids in increasing order, as the official
Mask2Former dataset registration does (for COCO: the 80 things first).
"""
from typing import Any, Callable, Dict, Hashable, List, Mapping, Optional, Sequence, Union

from mmengine.dataset import BaseDataset
from mmengine.fileio import join_path, load

from mmseg_maskformer.registry import DATASETS
from mmseg_maskformer.utils.panoptic import VOID

#: Metainfo keys derived from the ``categories`` of the annotation file.
DERIVED_META_KEYS = ('classes', 'category_ids', 'is_thing', 'thing_classes',
                     'stuff_classes', 'palette')


def categories_to_metainfo(categories: Sequence[dict], source: str) -> dict:
    """Derive dataset metainfo from COCO-panoptic ``categories``.

    Args:
        categories: The ``categories`` list of the annotation file.
        source: File name used in error messages.

    Returns:
        ``classes`` (tuple of names), ``category_ids`` (tuple of original ids),
        ``is_thing`` (tuple of bool), ``thing_classes``, ``stuff_classes``, all
        in contiguous-label order (ids sorted increasingly), and ``palette``
        (list of RGB triples) when every category has a ``color``.

    Raises:
        ValueError: On an empty list, a category without ``id``/``name``/
            ``isthing``, or a duplicate category id.
    """
    if not categories:
        raise ValueError(f'{source}: the annotation file lists no categories')
    seen: Dict[int, dict] = {}
    for cat in categories:
        missing = [key for key in ('id', 'name', 'isthing') if key not in cat]
        if missing:
            raise ValueError(f'{source}: category {cat} lacks {missing}')
        if cat['id'] in seen:
            raise ValueError(f'{source}: duplicate category id {cat["id"]}')
        seen[cat['id']] = cat
    ordered = [seen[cat_id] for cat_id in sorted(seen)]
    metainfo = dict(
        classes=tuple(cat['name'] for cat in ordered),
        category_ids=tuple(int(cat['id']) for cat in ordered),
        is_thing=tuple(bool(cat['isthing']) for cat in ordered),
        thing_classes=tuple(cat['name'] for cat in ordered if cat['isthing']),
        stuff_classes=tuple(cat['name'] for cat in ordered if not cat['isthing']))
    if all('color' in cat for cat in ordered):
        metainfo['palette'] = [list(cat['color']) for cat in ordered]
    return metainfo


def merge_metainfo(derived: dict, given: Mapping, source: str) -> dict:
    """Merge user metainfo into the metainfo derived from the annotation file.

    Args:
        derived: Output of :func:`categories_to_metainfo`.
        given: Metainfo passed by the user; it may name any of the derived keys
            (they must then equal the file's; ``palette`` may replace the file's
            colours but must have one colour per class) and any other key
            (kept as given).
        source: File name used in error messages.

    Returns:
        The merged metainfo.

    Raises:
        ValueError: When a given value contradicts the annotation file.
    """
    merged = dict(given)
    num_classes = len(derived['classes'])
    for key, value in derived.items():
        if key not in given:
            merged[key] = value
        elif key == 'palette':
            if len(given[key]) != num_classes:
                raise ValueError(f'metainfo palette has {len(given[key])} colours but '
                                 f'{source} has {num_classes} categories')
        else:
            _check_same(key, tuple(given[key]), value, source)
    return merged


def _check_same(key: str, given: tuple, expected: tuple, source: str) -> None:
    """Raise a ``ValueError`` naming the first difference of two sequences."""
    if given == expected:
        return
    if len(given) != len(expected):
        detail = f'{len(given)} entries given, {len(expected)} in the file'
    else:
        pos = next(i for i, (a, b) in enumerate(zip(given, expected)) if a != b)
        detail = f'position {pos}: {given[pos]!r} given, {expected[pos]!r} in the file'
    raise ValueError(f'metainfo {key!r} does not match the categories of {source} '
                     f'(sorted by id): {detail}')


def index_unique(entries: Sequence[dict], key: str, kind: str,
                 source: str) -> Dict[Hashable, dict]:
    """Index ``entries`` by ``entry[key]``, rejecting missing or repeated keys.

    Args:
        entries: JSON objects, e.g. the ``images`` list.
        key: The identifying field, e.g. ``'id'``.
        kind: What an entry is, for error messages (``'image'``).
        source: File name used in error messages.

    Returns:
        Mapping from ``entry[key]`` to the entry, in the input order.
    """
    index: Dict[Hashable, dict] = {}
    for entry in entries:
        if key not in entry:
            raise ValueError(f'{source}: {kind} entry without {key!r}: {entry}')
        if entry[key] in index:
            raise ValueError(f'{source}: duplicate {kind} {key} {entry[key]!r}')
        index[entry[key]] = entry
    return index


@DATASETS.register_module()
class PanopticFormatDataset(BaseDataset):
    """A dataset in the COCO panoptic format (COCO panoptic, ADE20K panoptic, ...).

    The metainfo is derived from the ``categories`` of ``ann_file`` (see
    :func:`categories_to_metainfo`): ``classes``, ``category_ids``,
    ``is_thing``, ``thing_classes``, ``stuff_classes`` and, when the categories
    carry colours, ``palette``. Contiguous labels ``0 .. C-1`` follow the
    category ids in increasing order, like the official Mask2Former
    registrations of COCO (things first) and ADE20K (ids 0..149, i.e. label ==
    id). The metainfo is filled when the annotation file is loaded, i.e. in
    ``full_init()``: right away unless ``lazy_init=True``.

    Each data info holds:

    - ``img_path`` (str): ``data_prefix['img']`` / the image ``file_name``.
    - ``seg_map_path`` (str): ``data_prefix['seg']`` / the annotation
      ``file_name`` (the panoptic PNG).
    - ``img_id`` (int or str), ``height`` and ``width`` (int): from the image entry.
    - ``segments_info`` (list of dict), one per segment, in file order:
      ``id`` (int, the PNG id), ``category_id`` (int, original id), ``label``
      (int, contiguous), ``iscrowd`` (bool), ``isthing`` (bool), ``area``
      (int or None) and ``bbox`` (list ``[x, y, w, h]`` or None).

    Data infos follow the order of the ``images`` list. Use
    :class:`LoadPanopticTargets` to turn the PNG and ``segments_info`` into
    training targets.

    Args:
        ann_file: The panoptic JSON, relative to ``data_root`` unless absolute.
        metainfo: Extra metainfo. Keys derived from the file (``classes``,
            ``category_ids``, ``is_thing``, ``thing_classes``,
            ``stuff_classes``) may be given only if they equal the file's,
            otherwise a ``ValueError`` names the first difference; ``palette``
            may override the file's colours (one per class). Other keys are
            kept as given.
        data_root: Root joined to ``ann_file`` and the data prefixes.
        data_prefix: Folders of the images (``img``) and of the panoptic PNGs
            (``seg``); both keys are required. Defaults to the COCO val layout
            ``dict(img='val2017/', seg='annotations/panoptic_val2017/')``.
        filter_cfg: Training-time filtering (ignored when ``test_mode``):
            ``filter_empty_gt`` (bool) drops images without a non-crowd segment,
            i.e. with nothing to match (the official mappers' "all ignored"
            case; mmdet counts only thing segments instead); ``min_size`` (int)
            drops images whose shorter side is smaller.
        indices: Keep only these data infos (see ``BaseDataset``).
        serialize_data: Serialize the data list to save memory in workers.
        pipeline: Transforms applied to each data info.
        test_mode: Evaluation mode (no filtering, no refetching).
        lazy_init: Defer loading the annotation file (and the derived metainfo)
            until ``full_init()``.
        max_refetch: Retries when the training pipeline returns ``None``.
        backend_args: mmengine file backend arguments used to read ``ann_file``.

    Raises:
        ValueError: Naming ``ann_file``, for a missing top-level key, duplicate
            category/image/annotation/segment ids, a segment id of 0 (void), an
            unknown category id, an image without annotation entry or an
            annotation without image entry, or metainfo contradicting the file.

    Example:
        >>> dataset = PanopticFormatDataset(
        ...     data_root='data/coco', ann_file='annotations/panoptic_val2017.json')
        >>> dataset.metainfo['thing_classes'][:2]
        ('person', 'bicycle')
        >>> ade = PanopticFormatDataset(  # layout of the official ADE20K script
        ...     data_root='data/ADEChallengeData2016', ann_file='ade20k_panoptic_val.json',
        ...     data_prefix=dict(img='images/validation/', seg='ade20k_panoptic_val/'))
        >>> len(ade.metainfo['classes']), len(ade.metainfo['thing_classes'])
        (150, 100)
    """

    METAINFO: dict = dict()

    def __init__(self,
                 ann_file: str = '',
                 metainfo: Optional[Mapping] = None,
                 data_root: str = '',
                 data_prefix: Optional[Dict[str, str]] = None,
                 filter_cfg: Optional[dict] = None,
                 indices: Optional[Union[int, Sequence[int]]] = None,
                 serialize_data: bool = True,
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 test_mode: bool = False,
                 lazy_init: bool = False,
                 max_refetch: int = 1000,
                 backend_args: Optional[dict] = None) -> None:
        if data_prefix is None:
            data_prefix = dict(img='val2017/', seg='annotations/panoptic_val2017/')
        missing = {'img', 'seg'} - set(data_prefix)
        if missing:
            raise ValueError(f'data_prefix needs the keys img and seg; missing {sorted(missing)}')
        self.backend_args = backend_args
        super().__init__(
            ann_file=ann_file, metainfo=metainfo, data_root=data_root,
            data_prefix=dict(data_prefix), filter_cfg=filter_cfg, indices=indices,
            serialize_data=serialize_data, pipeline=list(pipeline),
            test_mode=test_mode, lazy_init=lazy_init, max_refetch=max_refetch)

    def load_data_list(self) -> List[dict]:
        """Parse ``ann_file`` into data infos and fill the derived metainfo.

        Returns:
            One data info per image (see the class docstring).
        """
        source = self.ann_file
        raw = load(source, file_format='json', backend_args=self.backend_args)
        if not isinstance(raw, dict):
            raise ValueError(f'{source}: expected a COCO panoptic JSON object')
        missing = [key for key in ('images', 'annotations', 'categories') if key not in raw]
        if missing:
            raise ValueError(f'{source}: not a COCO panoptic annotation file; missing {missing}')
        derived = categories_to_metainfo(raw['categories'], source)
        self._metainfo = merge_metainfo(derived, self._metainfo, source)

        images = index_unique(raw['images'], 'id', 'image', source)
        annotations = index_unique(raw['annotations'], 'image_id', 'annotation', source)
        no_ann = [img_id for img_id in images if img_id not in annotations]
        if no_ann:
            raise ValueError(f'{source}: {len(no_ann)} image(s) have no annotation entry, '
                             f'e.g. image id {no_ann[0]!r}')
        no_img = [img_id for img_id in annotations if img_id not in images]
        if no_img:
            raise ValueError(f'{source}: {len(no_img)} annotation(s) refer to no image entry, '
                             f'e.g. image_id {no_img[0]!r}')

        ids = derived['category_ids']
        categories = {cat_id: (label, derived['is_thing'][label])
                      for label, cat_id in enumerate(ids)}
        return [self._parse_image(image, annotations[img_id], categories)
                for img_id, image in images.items()]

    def _parse_image(self, image: dict, annotation: dict, categories: Dict[int, tuple]) -> dict:
        """Build the data info of one image.

        Args:
            image: Its entry of ``images``.
            annotation: Its entry of ``annotations``.
            categories: Original category id -> ``(label, isthing)``.

        Returns:
            The data info (see the class docstring).
        """
        source = self.ann_file
        for key, entry in (('file_name', image), ('height', image), ('width', image),
                           ('file_name', annotation), ('segments_info', annotation)):
            if key not in entry:
                raise ValueError(f'{source}: entry of image {image["id"]!r} lacks {key!r}')
        return dict(
            img_path=join_path(self.data_prefix['img'], image['file_name']),
            seg_map_path=join_path(self.data_prefix['seg'], annotation['file_name']),
            img_id=image['id'],
            height=int(image['height']),
            width=int(image['width']),
            segments_info=self._parse_segments(annotation['segments_info'], image['id'],
                                               categories))

    def _parse_segments(self, segments: Sequence[dict], img_id: Any,
                        categories: Dict[int, tuple]) -> List[dict]:
        """Validate and convert the ``segments_info`` of one image.

        Args:
            segments: The raw ``segments_info``.
            img_id: Id of the image, for error messages.
            categories: Original category id -> ``(label, isthing)``.

        Returns:
            The converted segments (see the class docstring).
        """
        source = self.ann_file
        parsed: List[dict] = []
        seen = set()
        for seg in segments:
            if 'id' not in seg or 'category_id' not in seg:
                raise ValueError(f'{source}: segment {seg} of image {img_id!r} lacks '
                                 'id or category_id')
            seg_id, cat_id = int(seg['id']), seg['category_id']
            if seg_id == VOID:
                raise ValueError(f'{source}: image {img_id!r} has a segment with id 0, '
                                 'which the panoptic PNG reserves for void pixels')
            if seg_id in seen:
                raise ValueError(f'{source}: duplicate segment id {seg_id} in image {img_id!r}')
            if cat_id not in categories:
                raise ValueError(f'{source}: segment {seg_id} of image {img_id!r} has unknown '
                                 f'category_id {cat_id!r}')
            seen.add(seg_id)
            label, isthing = categories[cat_id]
            area = seg.get('area')
            bbox = seg.get('bbox')
            parsed.append(dict(
                id=seg_id, category_id=int(cat_id), label=label,
                iscrowd=bool(seg.get('iscrowd', 0)), isthing=isthing,
                area=None if area is None else int(area),
                bbox=None if bbox is None else list(bbox)))
        return parsed

    def filter_data(self) -> List[dict]:
        """Apply ``filter_cfg`` (``filter_empty_gt``, ``min_size``) outside test mode.

        Returns:
            The kept data infos.
        """
        if self.test_mode or not self.filter_cfg:
            return self.data_list
        filter_empty_gt = self.filter_cfg.get('filter_empty_gt', False)
        min_size = self.filter_cfg.get('min_size', 0)
        kept = []
        for info in self.data_list:
            if filter_empty_gt and all(seg['iscrowd'] for seg in info['segments_info']):
                continue
            if min(info['height'], info['width']) < min_size:
                continue
            kept.append(info)
        return kept
