"""Instance inference from mask-classification outputs (pure functions).

The algorithm is Mask2Former's ``instance_inference``: every (query, class) pair
is a candidate scored by the class probability; the ``topk`` best candidates
become instances whose masks are the query's binary mask and whose final score
is the class score times the mean mask probability inside that binary mask.
Boxes are the tight boxes of the binary masks (mmdet's ``mask2bbox``).
"""
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor


def masks_to_boxes(masks: Tensor) -> Tensor:
    """Tight boxes around binary masks.

    Args:
        masks: Binary masks, shape (N, H, W) bool.

    Returns:
        Boxes ``(x1, y1, x2, y2)`` with exclusive ``x2``/``y2``, shape (N, 4)
        float32; all zeros for empty masks.
    """
    if masks.dim() != 3:
        raise ValueError(f'expected masks (N, H, W), got {tuple(masks.shape)}')
    if masks.numel() == 0:
        return masks.new_zeros((masks.shape[0], 4), dtype=torch.float32)
    x1, x2 = _span(masks.any(1))
    y1, y2 = _span(masks.any(2))
    return torch.stack([x1, y1, x2, y2], dim=1).float()


def _span(occupied: Tensor) -> Tuple[Tensor, Tensor]:
    """First and one-past-last occupied index of every row.

    Args:
        occupied: Occupancy, shape (N, S) bool with S >= 1.

    Returns:
        ``(first, end)``, each shape (N,) int64; ``(0, 0)`` for empty rows.
    """
    size = occupied.shape[1]
    index = torch.arange(size, device=occupied.device)
    first = torch.where(occupied, index, size).amin(1)
    end = torch.where(occupied, index + 1, 0).amax(1)
    return first.masked_fill(end == 0, 0), end


def _mask_scores(mask_logits: Tensor, binary: Tensor) -> Tensor:
    """Mean probability inside each binary mask, ``sum(p * m) / (sum(m) + 1e-6)``.

    Args:
        mask_logits: Mask logits, shape (N, H, W).
        binary: Binary masks, shape (N, H, W) bool.

    Returns:
        Scores, shape (N,) float32.
    """
    probs = torch.where(binary, mask_logits.float().sigmoid(), 0.0).flatten(1)
    return probs.sum(1) / (binary.flatten(1).sum(1) + 1e-6)


def instance_inference(cls_logits: Tensor,
                       mask_logits: Tensor,
                       topk: int = 100,
                       is_thing: Optional[Tensor] = None,
                       mask_threshold: float = 0.0) -> Dict[str, Tensor]:
    """Instances of one image from its query predictions.

    Args:
        cls_logits: Class logits including "no object" last, shape (Q, K + 1).
        mask_logits: Mask logits, shape (Q, H, W).
        topk: Number of (query, class) candidates kept, at most ``Q * K``.
        is_thing: Whether each class is a thing class, shape (K,) bool; when given,
            candidates of stuff classes are dropped after the top-k selection.
        mask_threshold: Logit threshold of the binary masks.

    Returns:
        Dict, sorted by descending score (ties, such as the zero scores of empty
        masks, by descending class score), on the device of ``mask_logits``:
        ``labels`` (N,) int64, ``scores`` (N,) float32, ``masks`` (N, H, W) bool and
        ``bboxes`` (N, 4) float32 ``(x1, y1, x2, y2)``.
    """
    num_queries, num_classes = cls_logits.shape[0], cls_logits.shape[1] - 1
    if mask_logits.dim() != 3 or mask_logits.shape[0] != num_queries:
        raise ValueError(f'expected mask_logits ({num_queries}, H, W), got '
                         f'{tuple(mask_logits.shape)}')
    probs = cls_logits.float().softmax(-1)[:, :-1]
    scores, index = probs.flatten().topk(min(topk, probs.numel()))
    labels = index % num_classes
    queries = torch.div(index, num_classes, rounding_mode='floor')
    if is_thing is not None:
        thing = is_thing.to(labels.device).bool()[labels]
        scores, labels, queries = scores[thing], labels[thing], queries[thing]
    # Masks, mask scores and boxes are per query: compute them once per used query.
    used, inverse = torch.unique(queries, return_inverse=True)
    used_logits = mask_logits[used.to(mask_logits.device)]
    binary = used_logits > mask_threshold
    inverse = inverse.to(mask_logits.device)
    scores = scores.to(mask_logits.device) * _mask_scores(used_logits, binary)[inverse]
    order = scores.argsort(descending=True, stable=True)
    inverse = inverse[order]
    return dict(labels=labels.to(mask_logits.device)[order], scores=scores[order],
                masks=binary[inverse], bboxes=masks_to_boxes(binary)[inverse])
