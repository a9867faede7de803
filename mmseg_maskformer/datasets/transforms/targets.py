"""Mask-classification targets from a semantic segmentation map.

MaskFormer-style models predict a set of (class, binary mask) pairs, so the
semantic map is turned into one binary mask per class present in the image.
"""
from typing import Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mmseg_maskformer.registry import TRANSFORMS


def semantic_to_mask_targets(seg_map: np.ndarray,
                             ignore_index: int = 255) -> Tuple[np.ndarray, np.ndarray]:
    """Split a semantic map into per-class binary masks.

    Args:
        seg_map: Integer class map, shape (H, W).
        ignore_index: Value of pixels that belong to no class.

    Returns:
        ``(masks, labels)``: boolean masks of shape (N, H, W), one per class
        present (sorted by class id), and their class ids, ``int64`` shape (N,).
        With no labelled pixel the shapes are (0, H, W) and (0,).
    """
    if seg_map.ndim != 2:
        raise ValueError(f'expected a (H, W) segmentation map, got shape {seg_map.shape}')
    labels = np.unique(seg_map)
    labels = labels[labels != ignore_index].astype(np.int64)
    masks = seg_map[None, :, :] == labels[:, None, None]
    return masks.astype(bool, copy=False), labels


@TRANSFORMS.register_module()
class GenerateMaskTargets(BaseTransform):
    """Add per-class binary masks and labels for mask-classification training.

    Required keys: ``gt_seg_map`` (np.ndarray (H, W)).

    Added keys:

    - ``gt_masks`` (np.ndarray bool (N, H, W)): one mask per class present,
      sorted by class id.
    - ``gt_labels`` (np.ndarray int64 (N,)): the class ids.

    Place it after the geometric transforms (resize, crop, flip) so the masks
    match the final image.

    Args:
        ignore_index: Value of unlabelled pixels in ``gt_seg_map``. Defaults to 255.
    """

    def __init__(self, ignore_index: int = 255) -> None:
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        """Compute ``gt_masks`` and ``gt_labels`` from ``gt_seg_map``.

        Args:
            results: Pipeline results holding ``gt_seg_map``.

        Returns:
            The same dict with ``gt_masks`` and ``gt_labels`` added.
        """
        if 'gt_seg_map' not in results:
            raise KeyError('GenerateMaskTargets needs `gt_seg_map`; run LoadAnnotations first')
        masks, labels = semantic_to_mask_targets(np.asarray(results['gt_seg_map']),
                                                 self.ignore_index)
        results['gt_masks'] = masks
        results['gt_labels'] = labels
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(ignore_index={self.ignore_index})'
