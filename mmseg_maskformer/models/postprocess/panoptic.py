"""Panoptic inference from mask-classification outputs (pure functions).

The algorithm is Mask2Former's ``panoptic_inference``:

1. Score every query by its most likely class, ``max softmax(cls_logits)``; keep
   queries whose class is real and whose score exceeds ``object_mask_threshold``.
2. Assign every pixel to the kept query maximising ``score * sigmoid(mask)``.
3. Visit the kept queries in order. A query's segment is the pixels it won where
   its own mask probability is at least 0.5; it is dropped when empty or when it
   won less than ``overlap_threshold`` of its own (``sigmoid >= 0.5``) area.
   Stuff queries of an already seen class join that class's segment; every
   thing query opens a segment of its own.

Pixels are won by exactly one query, so segments never overlap and the painting
order of the official loop does not matter: the map is built with a single
lookup ``query -> encoded value`` instead of one write per query.

Panoptic maps encode ``label + instance_id * INSTANCE_OFFSET`` (stuff has
``instance_id == 0``, things count ``1, 2, ...`` in visiting order); void pixels
hold ``num_classes``.
"""
from typing import Dict, List, Tuple, Union

import torch
from torch import Tensor

from mmseg_maskformer.utils.panoptic import INSTANCE_OFFSET

Segment = Dict[str, Union[int, float, bool]]


def _check_inputs(cls_logits: Tensor, mask_logits: Tensor, is_thing: Tensor) -> int:
    """Validate shapes and return the number of real classes ``K``."""
    if cls_logits.dim() != 2 or mask_logits.dim() != 3:
        raise ValueError(f'expected cls_logits (Q, K + 1) and mask_logits (Q, H, W), got '
                         f'{tuple(cls_logits.shape)} and {tuple(mask_logits.shape)}')
    if cls_logits.shape[0] != mask_logits.shape[0]:
        raise ValueError(f'{cls_logits.shape[0]} class rows but {mask_logits.shape[0]} masks')
    num_classes = cls_logits.shape[1] - 1
    if is_thing.shape != (num_classes, ):
        raise ValueError(f'is_thing must have shape ({num_classes},), got '
                         f'{tuple(is_thing.shape)}')
    if num_classes >= INSTANCE_OFFSET:
        raise ValueError(f'{num_classes} classes do not fit the encoding '
                         f'label + instance_id * {INSTANCE_OFFSET}')
    return num_classes


def _query_areas(probs: Tensor, scores: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Pixel assignment and per-query areas.

    Args:
        probs: Mask probabilities of the kept queries, shape (N, H, W), N >= 1.
        scores: Class scores of the kept queries, shape (N,).

    Returns:
        ``(mask_ids, inside, won_area, own_area, segment_area)``: the winning
        query of every pixel (H, W) int64; whether the winner's own probability
        is at least 0.5 there (H, W) bool; pixels won (N,); pixels with
        ``prob >= 0.5`` (N,); pixels both won and ``>= 0.5`` (N,).
    """
    num = probs.shape[0]
    mask_ids = (probs * scores[:, None, None]).argmax(0)
    inside = probs.gather(0, mask_ids[None])[0] >= 0.5
    won_area = torch.bincount(mask_ids.flatten(), minlength=num)
    own_area = (probs >= 0.5).flatten(1).sum(1)
    segment_area = torch.bincount(mask_ids[inside], minlength=num)
    return mask_ids, inside, won_area, own_area, segment_area


def _assign_segments(labels: List[int], scores: List[float], won_area: List[int],
                     own_area: List[int], segment_area: List[int], is_thing: List[bool],
                     overlap_threshold: float, void: int) -> Tuple[List[int], List[Segment]]:
    """Official visiting loop over the kept queries, on per-query statistics.

    Args:
        labels, scores, won_area, own_area, segment_area: Per kept query, length N.
        is_thing: Per class, length K.
        overlap_threshold: Minimal ``won_area / own_area`` of an accepted query.
        void: Value of unassigned pixels (``K``).

    Returns:
        The encoded value each query paints (``void`` when dropped), length N, and
        the segments in creation order.
    """
    values = [void] * len(labels)
    segments: List[Segment] = []
    stuff_segment: Dict[int, Segment] = {}
    next_instance = 1
    for k, label in enumerate(labels):
        if segment_area[k] == 0 or won_area[k] / own_area[k] < overlap_threshold:
            continue
        thing = is_thing[label]
        if not thing and label in stuff_segment:
            segment = stuff_segment[label]
            segment['area'] += segment_area[k]
            values[k] = int(segment['id'])
            continue
        value = label + next_instance * INSTANCE_OFFSET if thing else label
        next_instance += int(thing)
        segment = dict(id=value, label=label, isthing=thing, score=scores[k],
                       area=segment_area[k])
        if not thing:
            stuff_segment[label] = segment
        segments.append(segment)
        values[k] = value
    return values, segments


def panoptic_inference(cls_logits: Tensor,
                       mask_logits: Tensor,
                       is_thing: Tensor,
                       object_mask_threshold: float = 0.8,
                       overlap_threshold: float = 0.8) -> Tuple[Tensor, List[Segment]]:
    """Panoptic map of one image from its query predictions.

    Args:
        cls_logits: Class logits including "no object" last, shape (Q, K + 1).
        mask_logits: Mask logits, shape (Q, H, W).
        is_thing: Whether each class is a thing class, shape (K,) bool.
        object_mask_threshold: Queries need a class score above this.
        overlap_threshold: Minimal fraction of its own mask a query must win.

    Returns:
        ``(panoptic, segments)``: the map (H, W) int64 encoded as
        ``label + instance_id * INSTANCE_OFFSET`` with void ``K``, on the device of
        ``mask_logits``; and per segment a dict with ``id`` (its encoded value),
        ``label``, ``isthing``, ``score`` (class score of its first query) and
        ``area`` (pixels in the map).
    """
    num_classes = _check_inputs(cls_logits, mask_logits, is_thing)
    scores, labels = cls_logits.float().softmax(-1).max(-1)
    keep = labels.ne(num_classes) & (scores > object_mask_threshold)
    panoptic = torch.full(mask_logits.shape[-2:], num_classes, dtype=torch.long,
                          device=mask_logits.device)
    if not bool(keep.any()):
        return panoptic, []
    scores, labels = scores[keep], labels[keep]
    probs = mask_logits[keep].float().sigmoid()
    mask_ids, inside, *areas = _query_areas(probs, scores)
    del probs
    values, segments = _assign_segments(labels.tolist(), scores.tolist(),
                                        *(area.tolist() for area in areas),
                                        is_thing.bool().tolist(), overlap_threshold,
                                        num_classes)
    lookup = torch.tensor(values, dtype=torch.long, device=panoptic.device)
    return torch.where(inside, lookup[mask_ids], panoptic), segments
