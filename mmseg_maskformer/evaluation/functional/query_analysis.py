"""Are a mask-classification model's errors in its masks or in its classes?

For every ground-truth segment (one per class present in a semantic map) the
query whose binary mask overlaps it best is found; its mask IoU says how well
the segment is *delineated*, and whether its arg-max class is the segment's
class says whether it is *recognised*. A model with good masks and wrong
classes needs class supervision (weight, schedule), one with poor masks needs
mask capacity or resolution.
"""
from typing import Dict, List, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ['SegmentRecord', 'best_query_records', 'summarise_records']

#: One ground-truth segment: ``label``, the best query's ``mask_iou``,
#: ``class_right`` (its arg-max class is ``label``), ``prob`` (its probability
#: of ``label``) and ``max_prob`` (the highest probability of ``label`` over
#: all queries).
SegmentRecord = Dict[str, float]


def best_query_records(cls_logits: Tensor, mask_logits: Tensor, gt_sem_seg: Tensor,
                       ignore_index: int = 255) -> List[SegmentRecord]:
    """Match each ground-truth class region to its best-overlapping query.

    Args:
        cls_logits: Class logits of one image, shape (Q, K + 1), "no object" last.
        mask_logits: Mask logits at the ground truth's size, shape (Q, H, W).
        gt_sem_seg: Semantic ground truth, shape (H, W), ``ignore_index`` ignored.
        ignore_index: Label of unlabelled pixels.

    Returns:
        One :data:`SegmentRecord` per class present, sorted by label.

    Raises:
        ValueError: If the shapes disagree.
    """
    if mask_logits.shape[-2:] != gt_sem_seg.shape[-2:] or gt_sem_seg.dim() != 2:
        raise ValueError(f'mask logits {tuple(mask_logits.shape)} and ground truth '
                         f'{tuple(gt_sem_seg.shape)} must share (H, W)')
    if cls_logits.shape[0] != mask_logits.shape[0]:
        raise ValueError(f'{cls_logits.shape[0]} class predictions but '
                         f'{mask_logits.shape[0]} masks')
    valid = gt_sem_seg != ignore_index
    masks = (mask_logits > 0) & valid  # sigmoid >= 0.5, ignored pixels left out
    probs = cls_logits.float().softmax(-1)[:, :-1]
    records = []
    for label in torch.unique(gt_sem_seg[valid]).tolist():
        region = gt_sem_seg == label
        inter = (masks & region).flatten(1).sum(1).double()
        union = (masks | region).flatten(1).sum(1).double()
        ious = inter / union  # union >= region area > 0
        query = int(ious.argmax())
        records.append(dict(label=int(label), mask_iou=float(ious[query]),
                            class_right=float(int(probs[query].argmax()) == label),
                            prob=float(probs[query, label]),
                            max_prob=float(probs[:, label].max())))
    return records


def summarise_records(records: Sequence[SegmentRecord]) -> Dict[int, Dict[str, float]]:
    """Per-class means of the records.

    Returns:
        ``{label: {'segments', 'mask_iou', 'class_right', 'prob', 'max_prob'}}``
        with the number of segments and the mean of each field.
    """
    by_label: Dict[int, List[SegmentRecord]] = {}
    for record in records:
        by_label.setdefault(int(record['label']), []).append(record)
    summary = {}
    for label in sorted(by_label):
        group = by_label[label]
        summary[label] = dict(segments=len(group), **{
            key: float(np.mean([r[key] for r in group]))
            for key in ('mask_iou', 'class_right', 'prob', 'max_prob')
        })
    return summary
