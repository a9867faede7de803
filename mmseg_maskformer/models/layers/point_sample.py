"""Point sampling on mask logits, as used by the matcher and the point losses.

Coordinates are normalised to ``[0, 1] x [0, 1]`` with ``(x, y)`` order and
``align_corners=False`` semantics: point ``(0.5 / W, 0.5 / H)`` is the centre of
the top-left pixel.
"""
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def point_sample(inputs: Tensor, points: Tensor, align_corners: bool = False) -> Tensor:
    """Bilinearly sample ``inputs`` at normalised ``points``.

    Args:
        inputs: Feature maps, shape (N, C, H, W).
        points: Normalised ``(x, y)`` coordinates in ``[0, 1]``, shape (N, P, 2)
            or (N, Hp, Wp, 2); a batch of 1 is shared by all N maps.
        align_corners: Passed to :func:`torch.nn.functional.grid_sample`.

    Returns:
        Sampled values, shape (N, C, P) or (N, C, Hp, Wp).
    """
    squeeze = points.dim() == 3
    if squeeze:
        points = points.unsqueeze(2)
    # fp16/bf16 inputs are sampled in fp32: rounding the coordinates to the
    # input's precision would read up to half a pixel away on large maps.
    low_precision = inputs.dtype in (torch.float16, torch.bfloat16)
    compute = inputs.float() if low_precision else inputs
    # shared points: the grid is formed once and expanded (grid_sample reads the
    # broadcast view), not formed from N expanded copies of the points
    grid = (2.0 * points.to(compute.dtype) - 1.0).expand(inputs.shape[0], -1, -1, -1)
    out = F.grid_sample(compute, grid, mode='bilinear', padding_mode='zeros',
                        align_corners=align_corners).to(inputs.dtype)
    return out.squeeze(3) if squeeze else out


def mask_uncertainty(logits: Tensor) -> Tensor:
    """Uncertainty of binary mask logits: ``-|logit|`` (highest at the boundary).

    Args:
        logits: Mask logits of any shape.

    Returns:
        Tensor of the same shape.
    """
    return -torch.abs(logits)


def sample_uncertain_points(logits: Tensor,
                            num_points: int,
                            oversample_ratio: float,
                            importance_sample_ratio: float,
                            uncertainty_fn: Callable[[Tensor], Tensor] = mask_uncertainty,
                            generator: torch.Generator = None) -> Tensor:
    """Importance sampling of points around uncertain regions (PointRend).

    ``int(num_points * oversample_ratio)`` candidates are drawn uniformly, the
    ``int(importance_sample_ratio * num_points)`` most uncertain of them are
    kept (in no particular order) and the rest of the ``num_points`` are drawn
    uniformly again.

    Args:
        logits: Coarse mask logits, shape (R, 1, H, W).
        num_points: Number of points per mask, P.
        oversample_ratio: Candidate over-sampling factor (>= 1).
        importance_sample_ratio: Fraction of points taken by uncertainty, in [0, 1].
        uncertainty_fn: Maps sampled logits (R, 1, K) to uncertainties (R, 1, K).
        generator: Optional random generator.

    Returns:
        Normalised point coordinates, shape (R, P, 2).
    """
    if oversample_ratio < 1:
        raise ValueError(f'oversample_ratio must be >= 1, got {oversample_ratio}')
    if not 0 <= importance_sample_ratio <= 1:
        raise ValueError(
            f'importance_sample_ratio must be in [0, 1], got {importance_sample_ratio}')
    num_masks = logits.shape[0]
    device = logits.device
    num_sampled = int(num_points * oversample_ratio)
    candidates = torch.rand(num_masks, num_sampled, 2, device=device, generator=generator)
    uncertainty = uncertainty_fn(point_sample(logits, candidates))[:, 0, :]
    num_uncertain = int(importance_sample_ratio * num_points)
    num_random = num_points - num_uncertain
    # the set of the most uncertain candidates, in no particular order (half the time of a
    # sorted top-k; the losses sum over points)
    top_idx = torch.topk(uncertainty, k=num_uncertain, dim=1, sorted=False).indices
    points = torch.gather(candidates, 1, top_idx.unsqueeze(-1).expand(-1, -1, 2))
    if num_random > 0:
        rand = torch.rand(num_masks, num_random, 2, device=device, generator=generator)
        points = torch.cat([points, rand.to(points.dtype)], dim=1)
    return points
