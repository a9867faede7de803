"""Semantic inference from mask-classification outputs (pure functions).

The mask logits are resized in channels-last layout: bilinear upsampling is faster
on CPU with the queries innermost, and the class scores are then one
``(H * W, Q) @ (Q, K)`` product whose rows are pixels, so the arg-max over
classes reads contiguous memory (about 2x faster than the (K, H, W) layout of
the official ``einsum``; same numbers up to float rounding, compared in
``tests/test_models/test_postprocess/test_semantic.py``).
"""
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def semantic_inference(cls_logits: Tensor, mask_logits: Tensor,
                       overwrite_masks: bool = False) -> Tensor:
    """Per-class scores ``sum_q p(c | q) * sigmoid(m_q)``.

    Args:
        cls_logits: Class logits including "no object", shape (Q, K + 1).
        mask_logits: Mask logits, shape (Q, H, W), any memory layout (fastest
            as returned by :func:`resize_to_original`, queries innermost).
        overwrite_masks: Apply the sigmoid in place, in the memory of
            ``mask_logits`` (when the caller has no further use for them): one
            full-resolution (Q, H, W) tensor less to allocate and fill.

    Returns:
        Class scores, shape (K, H, W): a view of a (H, W, K) tensor.
    """
    probs = cls_logits.float().softmax(-1)[:, :-1]
    q, h, w = mask_logits.shape
    pixels = mask_logits.float().permute(1, 2, 0).reshape(h * w, q)
    pixels = pixels.sigmoid_() if overwrite_masks else pixels.sigmoid()
    return (pixels @ probs).view(h, w, -1).permute(2, 0, 1)


def semantic_labels(scores: Tensor) -> Tensor:
    """Arg-max class of every pixel (the first on ties).

    Args:
        scores: Class scores, shape (K, H, W).

    Returns:
        Labels, shape (1, H, W), int64.
    """
    return scores.max(0, keepdim=True)[1]


def resize_to_original(mask_logits: Tensor, batch_input_shape: Sequence[int],
                       img_shape: Sequence[int], ori_shape: Sequence[int]) -> Tensor:
    """Undo padding and test-time resizing of mask logits.

    Args:
        mask_logits: Logits at the network's output stride, shape (Q, h, w).
        batch_input_shape: Padded network input ``(H_pad, W_pad)``.
        img_shape: Resized image size before padding ``(H_img, W_img)``.
        ori_shape: Original image size ``(H, W)``.

    Returns:
        Logits at the original image size, shape (Q, H, W), channels-last
        (stride 1 over Q).
    """
    x = mask_logits[None].contiguous(memory_format=torch.channels_last)
    x = _bilinear(x, batch_input_shape)
    x = x[..., :img_shape[0], :img_shape[1]]
    return _bilinear(x, ori_shape)[0]


def _bilinear(x: Tensor, size: Sequence[int]) -> Tensor:
    """``F.interpolate(bilinear, align_corners=False)``; the identity when sizes match."""
    target = (int(size[0]), int(size[1]))
    if tuple(x.shape[-2:]) == target:
        return x
    return F.interpolate(x, size=target, mode='bilinear', align_corners=False)
