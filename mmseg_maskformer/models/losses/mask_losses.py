"""Mask losses and their pairwise (cost-matrix) forms, as pure functions.

All mask inputs are logits; targets are {0, 1} floats. The pairwise forms are
computed in fp32 whatever the autocast state, so the matching costs stay
finite under mixed precision.
"""
import functools
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def fp32_costs(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Run a pairwise cost with autocast disabled (fp32 matmuls, no overflow)."""

    @functools.wraps(fn)
    def wrapper(inputs: Tensor, *args, **kwargs) -> Tensor:
        with torch.autocast(device_type=inputs.device.type, enabled=False):
            return fn(inputs, *args, **kwargs)

    return wrapper


def dice_loss(inputs: Tensor, targets: Tensor, num_masks: float) -> Tensor:
    """Dice loss summed over masks and divided by ``num_masks``.

    Args:
        inputs: Mask logits, shape (N, P).
        targets: Binary targets, shape (N, P).
        num_masks: Normaliser (average number of target masks per GPU).

    Returns:
        Scalar loss.
    """
    probs = inputs.float().sigmoid()
    targets = targets.float()
    numerator = 2 * (probs * targets).sum(-1)
    denominator = probs.sum(-1) + targets.sum(-1)
    loss = 1 - (numerator + 1) / (denominator + 1)
    return loss.sum() / num_masks


def sigmoid_ce_loss(inputs: Tensor, targets: Tensor, num_masks: float) -> Tensor:
    """Binary cross-entropy averaged over points, summed over masks / ``num_masks``.

    Args:
        inputs: Mask logits, shape (N, P).
        targets: Binary targets, shape (N, P).
        num_masks: Normaliser.

    Returns:
        Scalar loss.
    """
    loss = F.binary_cross_entropy_with_logits(inputs.float(), targets.float(), reduction='none')
    return loss.mean(1).sum() / num_masks


def sigmoid_focal_loss(inputs: Tensor, targets: Tensor, num_masks: float, alpha: float = 0.25,
                       gamma: float = 2.0) -> Tensor:
    """Focal loss averaged over points, summed over masks / ``num_masks``.

    Args:
        inputs: Mask logits, shape (N, P).
        targets: Binary targets, shape (N, P).
        num_masks: Normaliser.
        alpha: Positive-class weight (negative when < 0: no weighting).
        gamma: Focusing exponent.

    Returns:
        Scalar loss.
    """
    inputs, targets = inputs.float(), targets.float()
    prob = inputs.sigmoid()
    ce = F.binary_cross_entropy_with_logits(inputs, targets, reduction='none')
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * ((1 - p_t)**gamma)
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss.mean(1).sum() / num_masks


@fp32_costs
def pairwise_dice_cost(inputs: Tensor, targets: Tensor) -> Tensor:
    """Dice loss between every prediction and every target.

    Args:
        inputs: Mask logits, shape (Q, P).
        targets: Binary targets, shape (N, P).

    Returns:
        Cost matrix, shape (Q, N).
    """
    probs = inputs.float().sigmoid()
    targets = targets.float()
    numerator = 2 * probs @ targets.t()
    denominator = probs.sum(-1)[:, None] + targets.sum(-1)[None, :]
    return 1 - (numerator + 1) / (denominator + 1)


@fp32_costs
def pairwise_sigmoid_ce_cost(inputs: Tensor, targets: Tensor) -> Tensor:
    """Mean binary cross-entropy between every prediction and every target.

    ``BCE(x, t) = t * softplus(-x) + (1 - t) * softplus(x) = softplus(x) - t * x``
    (as ``softplus(-x) = softplus(x) - x``), so the sum over points is
    ``sum_p softplus(x_p) - x . t``: one softplus and one product instead of
    two of each.

    Args:
        inputs: Mask logits, shape (Q, P).
        targets: Binary targets, shape (N, P).

    Returns:
        Cost matrix, shape (Q, N).
    """
    inputs = inputs.float()
    targets = targets.float()
    num_points = inputs.shape[1]
    cost = F.softplus(inputs).sum(-1, keepdim=True) - inputs @ targets.t()
    return cost / max(num_points, 1)


@fp32_costs
def pairwise_focal_cost(inputs: Tensor, targets: Tensor, alpha: float = 0.25,
                        gamma: float = 2.0) -> Tensor:
    """Mean focal loss between every prediction and every target.

    Args:
        inputs: Mask logits, shape (Q, P).
        targets: Binary targets, shape (N, P).
        alpha: Positive-class weight (negative: none).
        gamma: Focusing exponent.

    Returns:
        Cost matrix, shape (Q, N).
    """
    inputs = inputs.float()
    targets = targets.float()
    prob = inputs.sigmoid()
    focal_pos = ((1 - prob)**gamma) * F.softplus(-inputs)
    focal_neg = (prob**gamma) * F.softplus(inputs)
    if alpha >= 0:
        focal_pos = focal_pos * alpha
        focal_neg = focal_neg * (1 - alpha)
    cost = focal_pos @ targets.t() + focal_neg @ (1 - targets).t()
    return cost / max(inputs.shape[1], 1)


@fp32_costs
def pairwise_class_cost(cls_logits: Tensor, labels: Tensor) -> Tensor:
    """Negative softmax probability of each target's class.

    Args:
        cls_logits: Class logits including "no object", shape (Q, K + 1).
        labels: Target classes, shape (N,).

    Returns:
        Cost matrix, shape (Q, N).
    """
    return -cls_logits.float().softmax(-1)[:, labels]


def stable_cost_matrix(cost: Tensor) -> Tensor:
    """Replace NaN/Inf entries so a linear assignment is always feasible.

    NaN and +Inf become a cost larger than every finite entry, -Inf one below
    every finite entry.

    Args:
        cost: Cost matrix, shape (Q, N).

    Returns:
        Finite cost matrix of the same shape.
    """
    finite = torch.isfinite(cost)
    if bool(finite.all()):
        return cost
    big = cost[finite].abs().max().item() + 1.0 if bool(finite.any()) else 1.0
    cost = torch.nan_to_num(cost, nan=big * 10, posinf=big * 10, neginf=-big * 10)
    return cost
