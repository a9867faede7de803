"""Swin Transformer whose window attention runs through ``scaled_dot_product_attention``.

``SwinTransformerSDPA`` is mmseg's ``SwinTransformer``: same arguments, same
modules, parameters and buffers (every checkpoint of mmseg's class loads
strictly, and the converters of this package write its keys), same outputs up
to float rounding. Two parts of each block's attention are replaced:

* the windows' attention: one ``F.scaled_dot_product_attention`` call with the
  relative position bias (and the shifted windows' mask) as its additive mask,
  instead of matmul, bias add, mask add, softmax, matmul; mmseg's version adds
  the mask through a broadcast of a non-contiguous 5-D view, which costs three
  times the unmasked attention;
* the window partition: padding, cyclic shift and partition become one
  ``index_select`` of precomputed token indices (and their reverse one more),
  instead of a pad, a roll and a permuted copy each way; the indices and the
  shifted windows' mask are built once per feature size, not at every call.

The patch merging between stages gathers each 2 x 2 neighbourhood with one
copy of whole token vectors, instead of a transpose, ``nn.Unfold`` and a
transpose back (stage 1 of Swin-T at 512²: 12.8 -> 5.9 ms).

In inference on CPU (no autograd, eval mode) the linear layers of the
attention and the FFN add their bias after the product, and the FFN's GELU and
residual add run in place.

The output maps are channels-last views of the normalised tokens, not NCHW
copies.
"""
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn.bricks.transformer import FFN
from mmseg.models.backbones.swin import ShiftWindowMSA, SwinTransformer, WindowMSA
from mmseg.models.utils.embed import AdaptivePadding, PatchMerging
from torch import Tensor, nn

from mmseg_maskformer.models.layers.transformer import inference_linear
from mmseg_maskformer.registry import MODELS

#: additive mask value between tokens of different regions of a shifted window (mmseg's)
SHIFT_MASK_VALUE = -100.0


def _padded(size: int, window: int) -> int:
    return size + (-size) % window


def window_token_indices(height: int, width: int, window: int,
                         shift: int) -> Tuple[Tensor, Tensor]:
    """Token orders between a feature map and its (shifted) windows.

    The map is padded at the bottom and right to multiples of ``window``
    (Hp, Wp), rolled by ``-shift`` on both axes and cut into windows taken row
    by row, each window's tokens row by row (mmseg's ``window_partition``).

    Args:
        height: Map height H.
        width: Map width W.
        window: Window side.
        shift: Cyclic shift (0 for regular windows).

    Returns:
        ``gather``: (Hp * Wp,) int64: for each token in window order, its
        row-major index in the map, or H * W for a padding token (the caller
        appends one zero token).
        ``scatter``: (H * W,) int64: for each map token, its position in window
        order.
    """
    hp, wp = _padded(height, window), _padded(width, window)
    # window-order position -> coordinates in the rolled padded map
    win_rows = torch.arange(hp).view(hp // window, window)  # (nWh, ws)
    win_cols = torch.arange(wp).view(wp // window, window)  # (nWw, ws)
    rows = win_rows[:, None, :, None].expand(-1, wp // window, -1, window)
    cols = win_cols[None, :, None, :].expand(hp // window, -1, window, -1)
    # rolled[r, c] = padded[(r + shift) % Hp, (c + shift) % Wp]
    src_rows = ((rows + shift) % hp).reshape(-1)
    src_cols = ((cols + shift) % wp).reshape(-1)
    inside = (src_rows < height) & (src_cols < width)
    gather = torch.where(inside, src_rows * width + src_cols, height * width)
    scatter = torch.empty(height * width, dtype=torch.long)
    scatter[gather[inside]] = torch.nonzero(inside).view(-1)
    return gather, scatter


def shifted_window_mask(height: int, width: int, window: int, shift: int) -> Tensor:
    """Additive attention mask of shifted windows over a padded (H, W) map.

    Tokens that the cyclic shift brought together from different regions of
    the map do not attend to each other (``SHIFT_MASK_VALUE``, as mmseg).

    Args:
        height: Padded map height (a multiple of ``window``).
        width: Padded map width (a multiple of ``window``).
        window: Window side.
        shift: Cyclic shift, ``0 < shift < window``.

    Returns:
        (num_windows, window**2, window**2) float32 of 0 and ``SHIFT_MASK_VALUE``.
    """
    def region(size: int) -> Tensor:
        idx = torch.arange(size)
        return (idx >= size - window).long() + (idx >= size - shift).long()

    label = region(height)[:, None] * 3 + region(width)[None, :]  # (H, W)
    windows = label.view(height // window, window, width // window, window)
    windows = windows.permute(0, 2, 1, 3).reshape(-1, window * window)  # (nW, N)
    different = windows[:, None, :] != windows[:, :, None]
    return different.float() * SHIFT_MASK_VALUE


class SDPAWindowMSA(WindowMSA):
    """mmseg's ``WindowMSA`` with the attention in one SDPA call (no new state)."""

    def forward(self, x: Tensor, mask: Tensor = None) -> Tensor:
        """Attention inside each window.

        Args:
            x: Windows' tokens, (B * nW, N, C), image-major.
            mask: Additive mask (nW, N, N) of values in (-inf, 0], or None.

        Returns:
            (B * nW, N, C).
        """
        num_win_batch, n, c = x.shape
        heads = self.num_heads
        q, k, v = inference_linear(x, self.qkv).view(num_win_batch, n, 3, heads,
                                                     c // heads).permute(
            2, 0, 3, 1, 4).unbind(0)  # each (B * nW, heads, N, d)
        # gathered head-major, so the mask (and its sum with the shift mask) is contiguous;
        # a heads-innermost mask slows the attention (stage 1 of Swin-T: 8.8 -> 7.0 ms)
        table = self.relative_position_bias_table.t()  # (heads, (2w - 1)²)
        bias = table[:, self.relative_position_index.view(-1)]
        attn_mask = bias.view(1, heads, n, n)
        if mask is not None:
            num_win = mask.shape[0]
            attn_mask = attn_mask + mask.unsqueeze(1)  # (nW, heads, N, N)
            if num_win_batch != num_win:
                attn_mask = attn_mask.repeat(num_win_batch // num_win, 1, 1, 1)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask.to(q.dtype), scale=self.scale,
            dropout_p=self.attn_drop.p if self.training else 0.0)
        out = out.transpose(1, 2).reshape(num_win_batch, n, c)
        return self.proj_drop(inference_linear(out, self.proj))


class SDPAShiftWindowMSA(ShiftWindowMSA):
    """mmseg's ``ShiftWindowMSA`` with index-based window partition (no new state).

    Built by :meth:`adopt` from an mmseg module, whose ``w_msa`` becomes an
    :class:`SDPAWindowMSA`.
    """

    _windows: Dict[tuple, Tuple[Tensor, Tensor, Tensor]]

    @classmethod
    def adopt(cls, module: ShiftWindowMSA) -> 'SDPAShiftWindowMSA':
        """Turns an mmseg ``ShiftWindowMSA`` (and its ``WindowMSA``) into these classes.

        The subclasses add methods only, so the module keeps its parameters,
        buffers and attributes; this changes its class in place.
        """
        if type(module) is not ShiftWindowMSA or type(module.w_msa) is not WindowMSA:
            raise TypeError(f'expected mmseg ShiftWindowMSA/WindowMSA, got {type(module)}')
        module.__class__ = cls
        module.w_msa.__class__ = SDPAWindowMSA
        module._windows = {}
        return module

    def _window_tensors(self, height: int, width: int,
                        device: torch.device) -> Tuple[Tensor, Tensor, Tensor]:
        """(gather, scatter, mask or None) of an (H, W) map, cached per size and device."""
        key = (height, width, device)
        if key not in self._windows:
            ws, shift = self.window_size, self.shift_size
            gather, scatter = window_token_indices(height, width, ws, shift)
            mask = None
            if shift > 0:
                mask = shifted_window_mask(_padded(height, ws), _padded(width, ws), ws, shift)
                mask = mask.to(device)
            self._windows[key] = (gather.to(device), scatter.to(device), mask)
        return self._windows[key]

    def forward(self, query: Tensor, hw_shape: Tuple[int, int]) -> Tensor:
        """(Shifted) window attention over a token map.

        Args:
            query: (B, H * W, C), row-major tokens.
            hw_shape: (H, W).

        Returns:
            (B, H * W, C).
        """
        b, length, c = query.shape
        height, width = hw_shape
        if length != height * width:
            raise ValueError(f'{length} tokens for a {height} x {width} map')
        gather, scatter, mask = self._window_tensors(height, width, query.device)
        if gather.numel() != length:  # padding tokens read a zero token appended at H * W
            query = torch.cat([query, query.new_zeros(b, 1, c)], dim=1)
        windows = query.index_select(1, gather).view(-1, self.window_size**2, c)
        out = self.w_msa(windows, mask=mask)
        return self.drop(out.view(b, -1, c).index_select(1, scatter))


class GatherPatchMerging(PatchMerging):
    """mmseg's 2 x 2 ``PatchMerging`` with one gather copy (no new state).

    mmseg unfolds an NCHW view: its merged features are channel-major,
    feature ``c * 4 + 2 * i + j`` is channel ``c`` of the token at row ``i``,
    column ``j`` of the neighbourhood. Here the features are gathered
    token-major (``(2 * i + j) * C + c``), copying whole token vectors, and
    the norm's and reduction's weights are read in that order: the same
    function up to float rounding.
    """

    @classmethod
    def adopt(cls, module: PatchMerging) -> 'GatherPatchMerging':
        """Turns an mmseg ``PatchMerging`` of 2 x 2 patches with a LayerNorm into this class.

        Raises:
            TypeError: Another module, or another kernel, stride, dilation,
                padding or norm than Swin's.
        """
        sampler = module.sampler if type(module) is PatchMerging else None
        padding = module.adap_padding if sampler is not None else None
        if (sampler is None or sampler.kernel_size != (2, 2) or sampler.stride != (2, 2)
                or sampler.dilation != (1, 1) or sampler.padding != (0, 0)
                or not isinstance(module.norm, torch.nn.LayerNorm)
                or not (padding is None or (isinstance(padding, AdaptivePadding)
                                            and padding.padding == 'corner'))):
            raise TypeError(f'expected mmseg PatchMerging of 2 x 2 patches with a LayerNorm, '
                            f'got {module!r}')
        module.__class__ = cls
        return module

    def forward(self, x: Tensor, input_size: Tuple[int, int]) -> Tuple[Tensor, Tuple[int, int]]:
        """Merges each 2 x 2 neighbourhood of tokens into one.

        Args:
            x: (B, H * W, C), row-major tokens.
            input_size: (H, W); an odd side is padded with zeros at the end.

        Returns:
            (B, ceil(H / 2) * ceil(W / 2), C_out) and (ceil(H / 2), ceil(W / 2)).
        """
        b, length, c = x.shape
        height, width = input_size
        if length != height * width:
            raise ValueError(f'{length} tokens for a {height} x {width} map')
        x = x.view(b, height, width, c)
        if height % 2 or width % 2:
            x = F.pad(x, (0, 0, 0, width % 2, 0, height % 2))
        out_h, out_w = (height + 1) // 2, (width + 1) // 2
        x = x.view(b, out_h, 2, out_w, 2, c).permute(0, 1, 3, 2, 4, 5).reshape(b, -1, 4 * c)
        order = torch.arange(4 * c, device=x.device).view(c, 4).t().reshape(-1)
        norm = self.norm
        x = F.layer_norm(x, (4 * c,), norm.weight[order], norm.bias[order], norm.eps)
        x = F.linear(x, self.reduction.weight[:, order], self.reduction.bias)
        return x, (out_h, out_w)


class GELUFFN(FFN):
    """mmcv's two-layer GELU ``FFN`` of a Swin block, leaner in inference (no new state).

    Without autograd, in eval mode on CPU, the hidden activation's GELU and the
    residual add run in place and the linear layers through
    :func:`~mmseg_maskformer.models.layers.transformer.inference_linear`
    (the in-place GELU and residual alone, one FFN of Swin-T's first stage at
    512²: 14.1 -> 11.6 ms). Otherwise it is mmcv's forward.
    """

    @classmethod
    def adopt(cls, module: FFN) -> 'GELUFFN':
        """Turns an mmcv ``FFN`` of two linear layers with a GELU into this class.

        Raises:
            TypeError: Another module, number of layers, activation or layer scale.
        """
        layers = getattr(module, 'layers', None)
        if (type(module) is not FFN or module.num_fcs != 2 or len(layers) != 3
                or not isinstance(layers[0][1], nn.GELU)
                or not isinstance(module.gamma2, nn.Identity)):
            raise TypeError(f'expected an mmcv FFN of two linear layers with a GELU, '
                            f'got {module!r}')
        module.__class__ = cls
        return module

    def forward(self, x: Tensor, identity: Tensor = None) -> Tensor:
        """``identity + fc2(gelu(fc1(x)))`` (dropouts and drop-path in training).

        Args:
            x: (..., C).
            identity: Residual (..., C); ``x`` when None.

        Returns:
            (..., C), or without the residual when ``add_identity`` is False.
        """
        if self.training or x.device.type != 'cpu' or torch.is_grad_enabled():
            return super().forward(x, identity)
        fc1, gelu = self.layers[0][0], self.layers[0][1]
        hidden = torch.ops.aten.gelu_(inference_linear(x, fc1), approximate=gelu.approximate)
        out = inference_linear(hidden, self.layers[1])
        if not self.add_identity:
            return out
        identity = x if identity is None else identity
        if out.dtype != identity.dtype:  # autocast: the residual keeps its wider type
            return identity + out
        return out.add_(identity)


@MODELS.register_module()
class SwinTransformerSDPA(SwinTransformer):
    """mmseg's ``SwinTransformer`` with SDPA window attention and gather patch merging.

    Takes exactly the arguments of mmseg's ``SwinTransformer`` and has its
    state-dict keys, so a config switches between the two by ``type`` alone.
    The output maps are mmseg's, as channels-last views of the normalised
    tokens rather than NCHW copies (the convolutions after them run
    channels-last anyway).
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        for stage in self.stages:
            for block in stage.blocks:
                SDPAShiftWindowMSA.adopt(block.attn)
                GELUFFN.adopt(block.ffn)
            if stage.downsample is not None:
                GatherPatchMerging.adopt(stage.downsample)

    def forward(self, x: Tensor) -> List[Tensor]:
        """Maps of the ``out_indices`` stages, each (B, C_i, H_i, W_i), channels-last."""
        x, hw_shape = self.patch_embed(x)
        if self.use_abs_pos_embed:
            x = x + self.absolute_pos_embed
        x = self.drop_after_pos(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x, hw_shape, out, out_hw_shape = stage(x, hw_shape)
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(out)
                outs.append(out.view(-1, *out_hw_shape, self.num_features[i]).permute(0, 3, 1, 2))
        return outs
