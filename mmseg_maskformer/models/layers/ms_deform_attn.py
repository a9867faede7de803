"""Multi-scale deformable attention (Deformable DETR), used by the pixel decoder.

On CPU, :class:`MSDeformAttn` runs a compiled C kernel (forward and backward,
:mod:`.cpu_kernel`; about 8x faster forward and 7x faster forward + backward than
the reference below at the models' sizes, see ``docs/benchmarks.md``); without
gradients it takes the raw offset and logit projections and forms the sampling
locations and the softmax inside the kernel. On CUDA tensors, mmcv's compiled
kernel when it is available.
Otherwise, two pure-PyTorch cores compute the same sum, on any device:

- :func:`ms_deform_attn_core`: one ``grid_sample`` per level, then the weighted
  sum of the points (the reference; its backward is the faster of the two on CPU);
- :func:`ms_deform_attn_gather`: the four bilinear corners of every point folded
  into one weighted gather (``embedding_bag``) over zero-bordered level maps; no
  (B*M, D, Q, P) sample tensor is built (about 2-5x faster forward on CPU).

without a compiled kernel, :class:`MSDeformAttn` takes the gather when no
gradient is needed and the reference otherwise.
``tests/test_models/test_layers/test_ms_deform_attn.py`` checks that all of them
agree, gradients included.
"""
import math
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .cpu_kernel import (kernel_available, ms_deform_attn_cpu,
                         ms_deform_attn_cpu_from_projections)
from .transformer import needs_graph


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


def _gather_rows_and_weights(spatial_shapes: Tensor, sampling_locations: Tensor,
                              attention_weights: Tensor, batch: int,
                              padded_sizes: List[int]) -> Tuple[Tensor, Tensor]:
    """Rows of the zero-bordered value table and weights of every bilinear corner.

    Level ``l`` of head ``m`` of image ``b`` is stored as an (H_l + 3, W_l + 3)
    map with one zero row/column before and two after, so that every corner of a
    location clamped to ``[-1, W_l] x [-1, H_l]`` (pixel units) is a table row,
    and corners outside the image read zeros (``grid_sample``'s zero padding,
    ``align_corners=False``).

    Args:
        spatial_shapes: ``(H_l, W_l)`` per level, shape (L, 2).
        sampling_locations: Normalised ``(x, y)``, shape (B, Q, M, L, P, 2), float32/64.
        attention_weights: Shape (B, Q, M, L, P), same dtype.
        batch: B.
        padded_sizes: ``(H_l + 3) * (W_l + 3)`` per level.

    Returns:
        rows (B * M * Q, L * P * 4) int64 and weights (B * M * Q, L * P * 4).
    """
    _, q, m, num_levels, num_points, _ = sampling_locations.shape
    dtype = sampling_locations.dtype
    table_rows = batch * m * sum(padded_sizes)
    # row numbers are computed in floating point: exact below 2**24 in float32
    index_dtype = dtype if table_rows < 2**24 or dtype == torch.float64 else torch.float64
    hw = spatial_shapes.tolist()
    sizes = sampling_locations.new_tensor([[w, h] for h, w in hw])  # (L, 2) as (x, y)
    # (B, M, Q, L, P, 2), contiguous: every tensor below is then made in this order
    loc = sampling_locations.permute(0, 2, 1, 3, 4, 5).contiguous()
    xy = (loc * sizes[:, None] - 0.5).nan_to_num_(-1.0)
    xy = torch.maximum(torch.minimum(xy, sizes[:, None]), xy.new_tensor(-1.0))
    xy0 = xy.floor()
    frac = xy - xy0
    xy0 = xy0.to(index_dtype)
    widths = xy0.new_tensor([w + 3 for _, w in hw])[:, None]  # (L, 1)
    starts = xy0.new_tensor([0] + padded_sizes[:-1]).cumsum(0)[:, None]
    blocks = torch.arange(batch * m, dtype=index_dtype, device=xy0.device).view(
        batch, m, 1, 1, 1) * sum(padded_sizes)
    top_left = blocks + starts + (xy0[..., 1] + 1) * widths + (xy0[..., 0] + 1)
    corner_offsets = torch.cat([torch.zeros_like(widths), torch.ones_like(widths), widths,
                                widths + 1], -1)  # (L, 4): (x0,y0) (x1,y0) (x0,y1) (x1,y1)
    rows = (top_left[..., None] + corner_offsets[:, None]).long()
    w = attention_weights.permute(0, 2, 1, 3, 4).contiguous()
    fx, fy = frac[..., 0], frac[..., 1]
    wy = torch.stack([w - w * fy, w * fy], -1)
    wx = torch.stack([1 - fx, fx], -1)
    weights = wy[..., :, None] * wx[..., None, :]  # (B, M, Q, L, P, 2, 2)
    n = batch * m * q
    return rows.reshape(n, -1), weights.reshape(n, -1)


def ms_deform_attn_gather(value: Tensor, spatial_shapes: Tensor, sampling_locations: Tensor,
                          attention_weights: Tensor) -> Tensor:
    """Multi-scale deformable attention as one weighted gather (``embedding_bag``).

    Same arguments, result and zero padding as :func:`ms_deform_attn_core`; the
    bilinear weights of the four corners times the attention weight of each
    point weight rows of a table holding every level of every head with a zero
    border, and ``F.embedding_bag(mode='sum')`` sums the ``L * P * 4`` rows of
    each (image, head, query) in one call. Differentiable (through
    ``embedding_bag``), but its backward is slower than the reference's on CPU.

    Args:
        value: Shape (B, S, M, D).
        spatial_shapes: Shape (L, 2), int64.
        sampling_locations: Shape (B, Q, M, L, P, 2).
        attention_weights: Shape (B, Q, M, L, P).

    Returns:
        Shape (B, Q, M * D).
    """
    out_dtype = value.dtype
    if value.dtype in (torch.float16, torch.bfloat16):
        value = value.float()
    b, _, m, d = value.shape
    q = sampling_locations.shape[1]
    hw = spatial_shapes.tolist()
    padded_sizes = [(h + 3) * (w + 3) for h, w in hw]
    levels = value.permute(0, 2, 1, 3).split([h * w for h, w in hw], dim=2)
    table = torch.cat([
        F.pad(level.reshape(b, m, h, w, d), (0, 0, 1, 2, 1, 2)).flatten(2, 3)
        for level, (h, w) in zip(levels, hw)
    ], 2).reshape(-1, d)
    compute = value.dtype
    rows, weights = _gather_rows_and_weights(spatial_shapes, sampling_locations.to(compute),
                                             attention_weights.to(compute), b, padded_sizes)
    out = F.embedding_bag(rows, table, per_sample_weights=weights, mode='sum')
    return out.view(b, m, q, d).permute(0, 2, 1, 3).reshape(b, q, m * d).to(out_dtype)


def softmax_short_last(x: Tensor) -> Tensor:
    """``x.softmax(-1)`` for a short last dimension (the L * P points of a head).

    PyTorch's CPU softmax over a last dimension of a dozen elements runs one short
    row at a time; over the first dimension of the transposed ``(K, N)`` matrix it
    runs vectorised across N, forward and backward (about 3x faster for
    ``(86016, 12)``, including the two transposing copies).

    Args:
        x: Logits, shape (..., K).

    Returns:
        Probabilities, same shape and dtype as ``x``, contiguous.
    """
    k = x.shape[-1]
    rows = x.reshape(-1, k).t().contiguous()
    return rows.softmax(0).t().contiguous().view(x.shape)


def normalise_offsets(offsets: Tensor, spatial_shapes: Tensor, num_heads: int,
                      num_points: int) -> Tensor:
    """Sampling offsets in pixels divided by their level's ``(W_l, H_l)``.

    The division runs on the flat (B, Q, M * L * P * 2) rows against one
    repeated divisor row: the same quotients as broadcasting a (L, 2) divisor
    over (B, Q, M, L, P, 2), which PyTorch's CPU kernels run about 10x slower
    because the innermost dimensions are so short.

    Args:
        offsets: Output of the offset projection, shape (B, Q, M * L * P * 2),
            ordered (head, level, point, xy).
        spatial_shapes: Level sizes ``(H_l, W_l)``, shape (L, 2).
        num_heads: M.
        num_points: P.

    Returns:
        Normalised offsets, shape (B, Q, M * L * P * 2).
    """
    levels = spatial_shapes.shape[0]
    divisor = spatial_shapes.flip(-1).to(offsets.dtype)  # (L, 2) as (W, H)
    divisor = divisor[None, :, None, :].expand(num_heads, levels, num_points, 2)
    return offsets / divisor.reshape(-1)


def sampling_locations_and_weights(reference_points: Tensor, offsets: Tensor, logits: Tensor,
                                   spatial_shapes: Tensor, num_heads: int,
                                   num_points: int) -> Tuple[Tensor, Tensor]:
    """Sampling locations and attention weights from the two projections.

    Args:
        reference_points: Normalised ``(x, y)`` per level, shape (B, Q, L, 2).
        offsets: Offsets in pixels, shape (B, Q, M * L * P * 2), ordered (head,
            level, point, xy).
        logits: Attention logits, shape (B, Q, M * L * P), ordered (head, level
            * point).
        spatial_shapes: Level sizes ``(H_l, W_l)``, shape (L, 2).
        num_heads: M.
        num_points: P.

    Returns:
        Locations ``reference + offset / (W_l, H_l)``, shape (B, Q, M, L, P, 2),
        and the softmax of each head's L * P logits, shape (B, Q, M, L, P).
    """
    b, q, levels, _ = reference_points.shape
    offsets = normalise_offsets(offsets, spatial_shapes, num_heads, num_points)
    locations = reference_points[:, :, None, :, None, :] + offsets.view(
        b, q, num_heads, levels, num_points, 2)
    weights = softmax_short_last(logits.view(b, q, num_heads, levels * num_points))
    return locations, weights.view(b, q, num_heads, levels, num_points)


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
        use_cpu_kernel: Use the compiled kernel for CPU tensors when it can be
            built (:mod:`.cpu_kernel`); fp16/bf16 inputs are sampled in fp32.
            Without gradients it runs from one projection of the offsets and
            logits (:func:`~.cpu_kernel.ms_deform_attn_cpu_from_projections`).
    """

    def __init__(self,
                 embed_dims: int = 256,
                 num_levels: int = 3,
                 num_heads: int = 8,
                 num_points: int = 4,
                 im2col_step: int = 128,
                 use_cuda_kernel: bool = True,
                 use_cpu_kernel: bool = True) -> None:
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
        self.use_cpu_kernel = use_cpu_kernel
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
        if (self.use_cpu_kernel and value.device.type == 'cpu' and kernel_available() and
                not needs_graph([query, value, reference_points], self)):
            return self.output_proj(self._cpu_kernel_from_projections(
                query, value, reference_points, spatial_shapes))
        locations, weights = sampling_locations_and_weights(
            reference_points, self.sampling_offsets(query), self.attention_weights(query),
            spatial_shapes, m, p)
        if self.use_cuda_kernel and value.is_cuda:
            out = self._cuda_kernel(value, spatial_shapes, level_start_index, locations, weights)
        elif self.use_cpu_kernel and value.device.type == 'cpu' and kernel_available():
            out = self._cpu_kernel(value, spatial_shapes, locations, weights)
        elif torch.is_grad_enabled() and (value.requires_grad or locations.requires_grad or
                                          weights.requires_grad):
            out = ms_deform_attn_core(value, spatial_shapes, locations, weights)
        else:
            out = ms_deform_attn_gather(value, spatial_shapes, locations, weights)
        return self.output_proj(out)

    def _cpu_kernel_from_projections(self, query: Tensor, value: Tensor,
                                     reference_points: Tensor, spatial_shapes: Tensor) -> Tensor:
        """Inference: one projection for offsets and logits, the rest in the kernel."""
        weight = torch.cat([self.sampling_offsets.weight, self.attention_weights.weight])
        bias = torch.cat([self.sampling_offsets.bias, self.attention_weights.bias])
        projections = F.linear(query, weight, bias)
        dtype = value.dtype
        # fp16/bf16 are sampled in fp32: low-precision coordinates are off by up to a pixel
        compute = torch.float64 if dtype == torch.float64 else torch.float32
        out = ms_deform_attn_cpu_from_projections(
            value.to(compute), spatial_shapes, reference_points.to(compute),
            projections.to(compute), self.num_heads, self.num_points)
        return out.to(dtype)

    @staticmethod
    def _cpu_kernel(value: Tensor, spatial_shapes: Tensor, locations: Tensor,
                    weights: Tensor) -> Tensor:
        dtype = value.dtype
        # fp16/bf16 are sampled in fp32: low-precision coordinates are off by up to a pixel
        compute = torch.float64 if dtype == torch.float64 else torch.float32
        out = ms_deform_attn_cpu(value.to(compute), spatial_shapes, locations.to(compute),
                                 weights.to(compute))
        return out.to(dtype)

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
