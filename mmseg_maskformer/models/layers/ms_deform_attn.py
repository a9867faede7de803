"""Multi-scale deformable attention (Deformable DETR), used by the pixel decoder.

The core op :func:`ms_deform_attn_core` runs in pure PyTorch (``grid_sample``) on
any device; on CUDA tensors :class:`MSDeformAttn` uses mmcv's compiled kernel
when it is available (same maths, less memory). ``tests/test_models/
test_layers/test_ms_deform_attn.py`` checks the two agree.
"""
import math
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def ms_deform_attn_core(value: Tensor, spatial_shapes: Tensor, sampling_locations: Tensor,
                        attention_weights: Tensor) -> Tensor:
    """Pure-PyTorch multi-scale deformable attention.

    Args:
        value: Per-head values of all levels, shape (B, S, M, D), where
            ``S = sum(H_l * W_l)``, ``M`` heads and ``D`` channels per head.
        spatial_shapes: ``(H_l, W_l)`` of each level, shape (L, 2), int64.
        sampling_locations: Normalised ``(x, y)`` in ``[0, 1]``,
            shape (B, Q, M, L, P, 2).
        attention_weights: Softmax-normalised weights, shape (B, Q, M, L, P).

    Returns:
        Attended features, shape (B, Q, M * D).
    """
    out_dtype = value.dtype
    if value.dtype in (torch.float16, torch.bfloat16):
        # sample in fp32: low-precision coordinates are off by up to a pixel
        value = value.float()
    b, _, m, d = value.shape
    _, q, _, num_levels, num_points, _ = sampling_locations.shape
    sizes = [int(h) * int(w) for h, w in spatial_shapes.tolist()]
    value_list = value.split(sizes, dim=1)
    grids = 2 * sampling_locations - 1
    weights = attention_weights.transpose(1, 2).reshape(b * m, 1, q, num_levels, num_points)
    weights = weights.to(value.dtype)
    out = None
    for lvl, (h, w) in enumerate(spatial_shapes.tolist()):
        value_l = value_list[lvl].flatten(2).transpose(1, 2).reshape(b * m, d, int(h), int(w))
        grid_l = grids[:, :, :, lvl].transpose(1, 2).flatten(0, 1)
        sampled = F.grid_sample(value_l, grid_l.to(value_l.dtype), mode='bilinear',
                                padding_mode='zeros', align_corners=False)  # (B*M, D, Q, P)
        # weight and sum the points level by level: no (B*M, D, Q, L*P) stack is built
        term = (sampled * weights[:, :, :, lvl]).sum(-1)
        out = term if out is None else out.add_(term)
    return out.reshape(b, m * d, q).transpose(1, 2).contiguous().to(out_dtype)


def _mmcv_kernel_available() -> bool:
    try:
        from mmcv.ops.multi_scale_deform_attn import MultiScaleDeformableAttnFunction  # noqa
    except (ImportError, OSError):
        return False
    return True


class MSDeformAttn(nn.Module):
    """Multi-scale deformable attention module.

    Args:
        embed_dims: Model width C.
        num_levels: Number of feature levels L.
        num_heads: Number of heads M (``embed_dims % num_heads == 0``).
        num_points: Sampling points per head and level P.
        im2col_step: Batch chunk of mmcv's CUDA kernel.
        use_cuda_kernel: Use mmcv's kernel for CUDA tensors when available.
    """

    def __init__(self,
                 embed_dims: int = 256,
                 num_levels: int = 3,
                 num_heads: int = 8,
                 num_points: int = 4,
                 im2col_step: int = 128,
                 use_cuda_kernel: bool = True) -> None:
        super().__init__()
        if embed_dims % num_heads != 0:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible by '
                             f'num_heads ({num_heads})')
        self.embed_dims = embed_dims
        self.num_levels = num_levels
        self.num_heads = num_heads
        self.num_points = num_points
        self.im2col_step = im2col_step
        self.use_cuda_kernel = use_cuda_kernel and _mmcv_kernel_available()
        self.sampling_offsets = nn.Linear(embed_dims, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(embed_dims, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(embed_dims, embed_dims)
        self.output_proj = nn.Linear(embed_dims, embed_dims)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Offsets start on rays in ``num_heads`` directions, 1..P steps long."""
        nn.init.constant_(self.sampling_offsets.weight, 0.0)
        thetas = torch.arange(self.num_heads, dtype=torch.float32) * (2.0 * math.pi /
                                                                       self.num_heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = (grid / grid.abs().max(-1, keepdim=True)[0]).view(self.num_heads, 1, 1, 2)
        grid = grid.repeat(1, self.num_levels, self.num_points, 1)
        grid = grid * torch.arange(1, self.num_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.view(-1))
        nn.init.constant_(self.attention_weights.weight, 0.0)
        nn.init.constant_(self.attention_weights.bias, 0.0)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.constant_(self.value_proj.bias, 0.0)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.constant_(self.output_proj.bias, 0.0)

    def forward(self,
                query: Tensor,
                reference_points: Tensor,
                value: Tensor,
                spatial_shapes: Tensor,
                level_start_index: Tensor,
                padding_mask: Optional[Tensor] = None) -> Tensor:
        """Attend from each query to P points per head and level.

        Args:
            query: Queries (with positional encoding), shape (B, Q, C).
            reference_points: Normalised ``(x, y)`` per level, shape (B, Q, L, 2).
            value: Flattened multi-level features, shape (B, S, C).
            spatial_shapes: Level sizes ``(H_l, W_l)``, shape (L, 2).
            level_start_index: Start of each level in S, shape (L,).
            padding_mask: True at padded value positions, shape (B, S).

        Returns:
            Output features, shape (B, Q, C).
        """
        b, q, _ = query.shape
        s = value.shape[1]
        m, lv, p = self.num_heads, self.num_levels, self.num_points
        value = self.value_proj(value)
        if padding_mask is not None:
            value = value.masked_fill(padding_mask[..., None], 0.0)
        value = value.view(b, s, m, self.embed_dims // m)
        offsets = self.sampling_offsets(query).view(b, q, m, lv, p, 2)
        weights = self.attention_weights(query).view(b, q, m, lv * p).softmax(-1).view(
            b, q, m, lv, p)
        normalizer = torch.stack([spatial_shapes[..., 1], spatial_shapes[..., 0]], -1)
        locations = (reference_points[:, :, None, :, None, :] +
                     offsets / normalizer[None, None, None, :, None, :].to(offsets.dtype))
        if self.use_cuda_kernel and value.is_cuda:
            out = self._cuda_kernel(value, spatial_shapes, level_start_index, locations, weights)
        else:
            out = ms_deform_attn_core(value, spatial_shapes, locations, weights)
        return self.output_proj(out)

    def _cuda_kernel(self, value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor,
                     locations: Tensor, weights: Tensor) -> Tensor:
        from mmcv.ops.multi_scale_deform_attn import MultiScaleDeformableAttnFunction

        # mmcv's kernel has no bf16 path: run it in fp32 (fp16 is supported).
        dtype = value.dtype
        compute = torch.float32 if dtype == torch.bfloat16 else dtype
        out = MultiScaleDeformableAttnFunction.apply(value.to(compute), spatial_shapes,
                                                     level_start_index, locations.to(compute),
                                                     weights.to(compute), self.im2col_step)
        return out.to(dtype)

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, num_levels={self.num_levels}, '
                f'num_heads={self.num_heads}, num_points={self.num_points}')


def flatten_levels(features: List[Tensor]) -> List[Tensor]:
    """Flatten a list of (B, C, H_l, W_l) maps to (B, H_l * W_l, C) each."""
    return [f.flatten(2).transpose(1, 2) for f in features]
