"""Loading of panoptic training targets from COCO-panoptic PNGs.

The targets follow the official Mask2Former panoptic dataset mappers: one binary
mask per non-crowd segment, things and stuff alike, labelled with its
contiguous class; crowd segments produce no mask. They are written under the
mmdet keys so mmdet's geometric transforms (``RandomResize`` with
``resize_type='mmdet.Resize'``, ``mmdet.RandomCrop``, ``mmdet.RandomFlip``,
``mmdet.FilterAnnotations``, ``mmdet.Pad``, ...) apply to them.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks

from mmseg_maskformer.registry import TRANSFORMS
from mmseg_maskformer.utils.panoptic import VOID, rgb2id
from .checks import read_image_checked, reject


def panoptic_to_targets(ids: np.ndarray, segments_info: Sequence[dict],
                        ignore_index: int = 255,
                        source: str = 'panoptic map') -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split a panoptic id map into mask targets and a semantic map.

    Args:
        ids: Segment ids, integer array (H, W); ``0`` is void.
        segments_info: Segments with ``id`` (int), ``label`` (int, contiguous)
            and ``iscrowd`` (bool), as in :class:`PanopticFormatDataset`.
        ignore_index: Semantic value of void pixels.
        source: Name of the map (its file) used in error messages.

    Returns:
        ``(masks, labels, seg_map)``:

        - ``masks``: ``uint8`` (N, H, W), one per non-crowd segment present in
          ``ids``, in ``segments_info`` order; (0, H, W) when there is none.
        - ``labels``: ``int64`` (N,), their contiguous labels.
        - ``seg_map``: (H, W) contiguous label of every pixel, crowd pixels
          included, ``ignore_index`` on void; ``uint8`` when all labels and
          ``ignore_index`` fit in it, ``int32`` otherwise.

    Raises:
        ValueError: If ``ids`` holds a non-void id absent from
            ``segments_info``, or a label equals ``ignore_index``.
    """
    by_id: Dict[int, dict] = {int(seg['id']): seg for seg in segments_info}
    labels_used = [int(seg['label']) for seg in segments_info]
    if ignore_index in labels_used:
        raise ValueError(f'{source}: a segment has label {ignore_index}, which equals '
                         'ignore_index')
    present, inverse = np.unique(ids.ravel(), return_inverse=True)
    inverse = inverse.reshape(ids.shape)
    unknown = [int(i) for i in present if i != VOID and int(i) not in by_id]
    if unknown:
        raise ValueError(f'{source}: segment ids {unknown[:8]} in the PNG have no entry in '
                         'segments_info')

    fits_uint8 = 0 <= ignore_index <= 255 and all(0 <= lb <= 255 for lb in labels_used)
    lut = np.array([ignore_index if i == VOID else by_id[int(i)]['label'] for i in present],
                   dtype=np.uint8 if fits_uint8 else np.int32)
    seg_map = lut[inverse]

    position = {int(i): k for k, i in enumerate(present)}
    kept = [seg for seg in segments_info if not seg['iscrowd'] and int(seg['id']) in position]
    masks = np.zeros((len(kept), ) + ids.shape, dtype=np.uint8)
    for k, seg in enumerate(kept):
        masks[k] = inverse == position[int(seg['id'])]
    labels = np.array([seg['label'] for seg in kept], dtype=np.int64)
    return masks, labels, seg_map


@TRANSFORMS.register_module()
class LoadPanopticTargets(BaseTransform):
    """Load mask and semantic targets from a COCO-panoptic PNG.

    Reads ``seg_map_path`` (an RGB PNG, decoded with ``rgb2id``) and pairs its
    ids with ``segments_info`` as written by :class:`PanopticFormatDataset`.
    Like the official Mask2Former panoptic mappers, every non-crowd segment,
    thing or stuff, becomes one mask target; crowd segments give no mask but
    keep their class in the semantic map, as the official semantic-from-panoptic
    preparation does. Place it after ``LoadImageFromFile`` and before any
    geometric transform; with ``with_masks=False`` it may follow a test-time
    resize, so the semantic map stays at the original size for evaluation.

    Required keys: ``seg_map_path`` (str), ``segments_info`` (list of dict with
    ``id``, ``label``, ``iscrowd``). Optional keys, checked against the PNG
    size: ``height``/``width``, ``ori_shape``, ``img_shape``.

    Added keys (N = number of non-crowd segments present in the PNG):

    - ``gt_masks`` (mmdet ``BitmapMasks``, ``uint8`` (N, H, W)) [with_masks]
    - ``gt_bboxes`` (mmdet ``HorizontalBoxes``, ``float32`` (N, 4) xyxy, the
      tight boxes of the masks with exclusive right/bottom edges) [with_masks]
    - ``gt_bboxes_labels`` (``int64`` (N,), contiguous labels) [with_masks]
    - ``gt_ignore_flags`` (``bool`` (N,), all False) [with_masks]
    - ``gt_seg_map`` (``uint8`` (H, W), ``int32`` if labels exceed 255;
      contiguous labels, ``ignore_index`` on void pixels) [with_seg]
    - ``seg_fields`` (list): ``'gt_seg_map'`` appended [with_seg]

    An image without segments gives (0, H, W) masks, (0, 4) boxes and an
    all-``ignore_index`` semantic map. A segment listed in ``segments_info``
    but absent from the PNG gives no mask (the official mapper would add an
    empty one, which carries no pixel to learn from); the reverse, a PNG id
    that ``segments_info`` does not list, is an error: its pixels would
    otherwise be learnt as neither a segment nor void.

    Args:
        with_masks: Add the mask, box, label and ignore-flag keys.
        with_seg: Add ``gt_seg_map``.
        ignore_index: Semantic value of void pixels.
        backend_args: mmengine file backend arguments used to read the PNG.
        skip_invalid: Instead of raising for a bad PNG (missing, corrupt,
            wrong size, unlisted ids), log a warning and drop the sample
            (training only: the dataset then draws another one).

    Raises:
        FileNotFoundError: Naming the PNG, when it does not exist.
        ValueError: Naming the PNG, when it is truncated or cannot be decoded,
            when its size differs from the image's (``height``/``width``,
            ``ori_shape`` or ``img_shape``), when it holds a segment id missing
            from ``segments_info``, or when a label equals ``ignore_index``.
        KeyError: When ``seg_map_path`` or ``segments_info`` is missing.
    """

    def __init__(self,
                 with_masks: bool = True,
                 with_seg: bool = True,
                 ignore_index: int = 255,
                 backend_args: Optional[dict] = None,
                 skip_invalid: bool = False) -> None:
        self.with_masks = with_masks
        self.with_seg = with_seg
        self.ignore_index = ignore_index
        self.backend_args = backend_args
        self.skip_invalid = skip_invalid

    def read_ids(self, path: str) -> Optional[np.ndarray]:
        """Read a panoptic PNG as segment ids.

        Args:
            path: File path or URI of the RGB PNG.

        Returns:
            ``int64`` segment ids (H, W), or None for a skipped bad file.
        """
        png = read_image_checked(path, flag='color', channel_order='rgb',
                                 backend_args=self.backend_args, skip_invalid=self.skip_invalid)
        return None if png is None else rgb2id(png)

    @staticmethod
    def check_size(shape: Tuple[int, int], results: dict, path: str,
                   check_img_shape: bool = True) -> None:
        """Check the PNG size against the sizes recorded in ``results``.

        Args:
            shape: (H, W) of the PNG.
            results: Pipeline results.
            path: The PNG, named in the error.
            check_img_shape: Also compare with ``img_shape`` (the current image).
        """
        expected: List[Tuple[str, Tuple[int, int]]] = []
        if 'height' in results and 'width' in results:
            expected.append(('data info height/width', (results['height'], results['width'])))
        # the semantic map alone may be loaded after a test-time resize (ground
        # truth at the original size); mask targets must match the current image
        keys = ('ori_shape', 'img_shape') if check_img_shape else ('ori_shape', )
        for key in keys:
            if results.get(key) is not None:
                expected.append((key, tuple(results[key][:2])))
        for name, size in expected:
            if tuple(int(s) for s in size) != tuple(shape):
                raise ValueError(f'{path}: panoptic PNG has size {tuple(shape)} but the '
                                 f'{name} is {tuple(size)}; load targets right after the '
                                 'image, before any geometric transform')

    def transform(self, results: dict) -> Optional[dict]:
        """Add the targets listed in the class docstring.

        Args:
            results: Pipeline results of one image.

        Returns:
            The same dict with the targets added, or None for a skipped bad PNG.
        """
        path = results.get('seg_map_path')
        if path is None:
            raise KeyError('LoadPanopticTargets needs `seg_map_path` (the panoptic PNG)')
        if 'segments_info' not in results:
            raise KeyError(f'LoadPanopticTargets needs `segments_info` for {path}')
        ids = self.read_ids(path)
        if ids is None:
            return None
        try:
            self.check_size(ids.shape, results, path, check_img_shape=self.with_masks)
            masks, labels, seg_map = panoptic_to_targets(ids, results['segments_info'],
                                                         self.ignore_index, path)
        except ValueError as error:
            reject(str(error), self.skip_invalid)
            return None
        if self.with_masks:
            height, width = ids.shape
            gt_masks = BitmapMasks(masks, height, width)
            results['gt_masks'] = gt_masks
            results['gt_bboxes'] = HorizontalBoxes.from_instance_masks(gt_masks)
            results['gt_bboxes_labels'] = labels
            results['gt_ignore_flags'] = np.zeros(len(labels), dtype=bool)
        if self.with_seg:
            results['gt_seg_map'] = seg_map
            results.setdefault('seg_fields', [])
            if 'gt_seg_map' not in results['seg_fields']:
                results['seg_fields'].append('gt_seg_map')
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(with_masks={self.with_masks}, '
                f'with_seg={self.with_seg}, ignore_index={self.ignore_index}, '
                f'backend_args={self.backend_args}, skip_invalid={self.skip_invalid})')
