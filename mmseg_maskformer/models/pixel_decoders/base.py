"""What every pixel decoder returns, checks its arguments against, and builds with.

A pixel decoder turns the backbone outputs (fine to coarse, e.g. res2-res5)
into per-pixel mask embeddings and the maps the transformer decoder attends to.
All decoders expose ``in_channels``, ``strides``, ``feat_channels``,
``out_channels`` and ``num_transformer_levels`` so that heads derive the
transformer decoder's widths from them, and return a :class:`PixelDecoderOutput`.
"""
from typing import List, NamedTuple, Optional, Sequence

import torch.nn.functional as F
from torch import Tensor, nn


class PixelDecoderOutput(NamedTuple):
    """Output of every pixel decoder.

    Attributes:
        mask_features: Per-pixel mask embeddings at the finest input stride
            (4 for res2), shape (B, out_channels, H/4, W/4).
        multi_scale_features: ``num_transformer_levels`` maps, coarse to fine,
            each (B, feat_channels, h_l, w_l): the memories of Mask2Former's
            masked-attention decoder (one level per layer, in rotation).
        transformer_encoder_features: Output of the decoder's transformer
            encoder at the coarsest level, shape (B, feat_channels, H/32,
            W/32); None when the decoder has no transformer encoder (FPN). The
            MaskFormer decoder attends to it when configured with
            ``transformer_in_feature='transformer_encoder'``.
    """

    mask_features: Tensor
    multi_scale_features: List[Tensor]
    transformer_encoder_features: Optional[Tensor]


def check_pixel_decoder_args(in_channels: Sequence[int], strides: Sequence[int],
                             num_transformer_levels: int) -> None:
    """Raise ``ValueError`` for inconsistent pixel decoder arguments.

    Args:
        in_channels: Channels of the backbone outputs, fine to coarse.
        strides: Strides of the same outputs.
        num_transformer_levels: Coarsest levels handed to the transformer
            decoder (or encoder).
    """
    if len(in_channels) != len(strides):
        raise ValueError(f'in_channels {list(in_channels)} and strides {list(strides)} '
                         'must have the same length (one per backbone output)')
    if len(in_channels) == 0:
        raise ValueError('a pixel decoder needs at least one backbone output')
    if any(a >= b for a, b in zip(strides[:-1], strides[1:])):
        raise ValueError(f'strides {list(strides)} must increase (backbone outputs fine to '
                         'coarse); reorder the inputs with the head in_index')
    if not 1 <= num_transformer_levels <= len(in_channels):
        raise ValueError(f'num_transformer_levels={num_transformer_levels} must be between 1 '
                         f'and the {len(in_channels)} backbone outputs')


def check_num_inputs(feats: Sequence[Tensor], in_channels: Sequence[int]) -> None:
    """Raise ``ValueError`` when ``feats`` does not match ``in_channels`` in length."""
    if len(feats) != len(in_channels):
        raise ValueError(f'pixel decoder expects {len(in_channels)} feature maps, '
                         f'got {len(feats)}')


def c2_xavier_fill(module: nn.Module) -> None:
    """Detectron2's ``c2_xavier_fill``: kaiming-uniform (a=1) weight, zero bias."""
    nn.init.kaiming_uniform_(module.weight, a=1)
    if getattr(module, 'bias', None) is not None:
        nn.init.constant_(module.bias, 0)


class Conv2dNorm(nn.Conv2d):
    """Bias-free ``same`` conv followed by GroupNorm (``.norm``) and optional ReLU.

    Mirrors detectron2's ``Conv2d(..., bias=False, norm=GN, activation)`` so
    the parameters are ``weight``, ``norm.weight`` and ``norm.bias``.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Square kernel size (odd); padding keeps the size.
        num_groups: GroupNorm groups.
        relu: Apply ReLU after the norm.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 num_groups: int = 32, relu: bool = False) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                         bias=False)
        self.norm = nn.GroupNorm(num_groups, out_channels)
        self.relu = relu
        c2_xavier_fill(self)

    def forward(self, x: Tensor) -> Tensor:
        """Args: x (B, C_in, H, W). Returns (B, C_out, H, W)."""
        x = self.norm(super().forward(x))
        return F.relu(x, inplace=True) if self.relu else x  # GroupNorm saves its input only
