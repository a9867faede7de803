"""Packing of pipeline results into model inputs for mask-classification models."""
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import InstanceData, PixelData
from mmseg.structures import SegDataSample

from mmseg_maskformer.registry import TRANSFORMS

DEFAULT_META_KEYS = ('img_id', 'img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                     'scale_factor', 'flip', 'flip_direction', 'reduce_zero_label',
                     'segments_info')


def mask_targets_from_results(results: dict) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """Binary masks (N, H, W) and labels (N,) of the targets in ``results``.

    Two conventions are accepted:

    - ours: ``gt_masks`` (bool np.ndarray (N, H, W)) with ``gt_labels`` (N,);
    - mmdet's: ``gt_masks`` (``BitmapMasks``/``PolygonMasks``) with
      ``gt_bboxes_labels`` (N,) and optional ``gt_ignore_flags`` (N,); targets
      flagged as ignored (crowd regions) are dropped, as the official
      Mask2Former mappers drop crowd annotations.

    Returns:
        ``(masks, labels)``, or None when ``results`` holds no ``gt_masks``.

    Raises:
        KeyError: If the labels are missing.
        ValueError: If masks and labels disagree in number.
    """
    if 'gt_masks' not in results:
        return None
    masks = results['gt_masks']
    if hasattr(masks, 'to_ndarray'):
        masks = masks.to_ndarray()
    masks = np.asarray(masks).astype(bool, copy=False)
    if 'gt_labels' in results:
        labels = np.asarray(results['gt_labels'], dtype=np.int64)
    elif 'gt_bboxes_labels' in results:
        labels = np.asarray(results['gt_bboxes_labels'], dtype=np.int64)
    else:
        raise KeyError('`gt_masks` is present but neither `gt_labels` nor '
                       '`gt_bboxes_labels` is')
    if masks.ndim != 3 or masks.shape[0] != labels.shape[0]:
        raise ValueError(f'gt_masks {tuple(masks.shape)} and labels {tuple(labels.shape)} '
                         'do not match')
    ignore = results.get('gt_ignore_flags', None)
    if ignore is not None:
        keep = ~np.asarray(ignore, dtype=bool)
        if keep.shape != labels.shape:
            raise ValueError(f'gt_ignore_flags {keep.shape} and labels {labels.shape} '
                             'do not match')
        masks, labels = masks[keep], labels[keep]
    return masks, labels


def image_to_tensor(img: np.ndarray) -> torch.Tensor:
    """Convert an image (H, W) or (H, W, C) to a contiguous tensor (C, H, W).

    The dtype and channel order are kept.
    """
    if img.ndim < 3:
        img = img[..., None]
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).contiguous()


@TRANSFORMS.register_module()
class PackMaskFormerInputs(BaseTransform):
    """Pack an image, its semantic map and its mask targets for the model.

    The mask-classification counterpart of mmseg's ``PackSegInputs``.

    Required keys: ``img`` (np.ndarray (H, W, C) or (H, W)).

    Optional keys: ``gt_seg_map`` (np.ndarray (H, W)); mask targets, either
    ``gt_masks`` (bool np.ndarray (N, H, W)) with ``gt_labels`` (int np.ndarray
    (N,)) as written by :class:`GenerateMaskTargets`, or mmdet's ``gt_masks``
    (``BitmapMasks``) with ``gt_bboxes_labels`` and ``gt_ignore_flags`` (ignored
    targets are dropped), see :func:`mask_targets_from_results`; the ``meta_keys``.

    Output:

    - ``inputs`` (torch.Tensor (C, H, W)): the image, same dtype and channel order.
    - ``data_samples`` (SegDataSample): ``gt_sem_seg`` (PixelData, ``data`` int64
      (1, H, W)) if ``gt_seg_map`` is present; ``gt_instances`` (InstanceData
      with ``labels`` int64 (N,) and ``masks`` bool (N, H, W)) if ``gt_masks``
      is present; the meta keys that are present as metainfo.

    Args:
        meta_keys: Result keys copied into the data sample's metainfo.
    """

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        """Pack ``results`` into ``dict(inputs=..., data_samples=...)``.

        Args:
            results: Pipeline results.

        Returns:
            The packed inputs and data sample.
        """
        packed = dict()
        if 'img' in results:
            packed['inputs'] = image_to_tensor(results['img'])

        data_sample = SegDataSample()
        if 'gt_seg_map' in results:
            seg_map = np.asarray(results['gt_seg_map'])
            if seg_map.ndim == 2:
                seg_map = seg_map[None]
            data = torch.from_numpy(np.ascontiguousarray(seg_map, dtype=np.int64))
            data_sample.gt_sem_seg = PixelData(data=data)
        targets = mask_targets_from_results(results)
        if targets is not None:
            masks, labels = targets
            data_sample.gt_instances = InstanceData(
                labels=torch.from_numpy(labels),
                masks=torch.from_numpy(np.ascontiguousarray(masks)))

        data_sample.set_metainfo({k: results[k] for k in self.meta_keys if k in results})
        packed['data_samples'] = data_sample
        return packed

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
