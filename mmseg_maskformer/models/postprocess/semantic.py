"""Semantic inference from mask-classification outputs (pure functions)."""
from typing import Sequence

import torch.nn.functional as F
from torch import Tensor


def semantic_inference(cls_logits: Tensor, mask_logits: Tensor) -> Tensor:
    """Per-class scores ``sum_q p(c | q) * sigmoid(m_q)``.

    Args:
        cls_logits: Class logits including "no object", shape (Q, K + 1).
        mask_logits: Mask logits, shape (Q, H, W).

    Returns:
        Class scores, shape (K, H, W).
    """
    probs = cls_logits.float().softmax(-1)[:, :-1]
    masks = mask_logits.float().sigmoid()
    return (probs.t() @ masks.flatten(1)).view(-1, *masks.shape[-2:])


def resize_to_original(mask_logits: Tensor, batch_input_shape: Sequence[int],
                       img_shape: Sequence[int], ori_shape: Sequence[int]) -> Tensor:
    """Undo padding and test-time resizing of mask logits.

    Args:
        mask_logits: Logits at the network's output stride, shape (Q, h, w).
        batch_input_shape: Padded network input ``(H_pad, W_pad)``.
        img_shape: Resized image size before padding ``(H_img, W_img)``.
        ori_shape: Original image size ``(H, W)``.

    Returns:
        Logits at the original image size, shape (Q, H, W).
    """
    x = F.interpolate(mask_logits[None], size=tuple(batch_input_shape), mode='bilinear',
                      align_corners=False)
    x = x[..., :img_shape[0], :img_shape[1]]
    x = F.interpolate(x, size=tuple(ori_shape), mode='bilinear', align_corners=False)
    return x[0]
