"""Transformer-encoder pixel decoder of MaskFormer ("+ 6 Enc", official
``TransformerEncoderPixelDecoder``).

The FPN of :class:`FPNPixelDecoder`, except at the top: the coarsest backbone
output is projected by a 1x1 conv (``input_proj``), encoded by a standard
transformer encoder with sine positional encoding (``transformer.encoder.
layers.{i}``: ``self_attn``, ``linear1``, ``linear2``, ``norm1``, ``norm2``)
and passed through a 3x3 conv (``layer_{n}``, feat_channels -> feat_channels).
The encoder output is returned as ``transformer_encoder_features``.

Like the official code, the encoder gets no padding mask: zero padding at the
bottom-right of a batch is attended to like image content.
"""
from typing import Optional, Sequence, Tuple

from torch import Tensor, nn

from mmseg_maskformer.registry import MODELS
from ..layers import SinePositionalEncoding, feed_forward
from .base import Conv2dNorm, c2_xavier_fill
from .fpn_pixel_decoder import FPNPixelDecoder


class TransformerEncoderLayer(nn.Module):
    """DETR encoder layer: self-attention then FFN, post-norm or pre-norm.

    Args:
        embed_dims: Width C.
        num_heads: Attention heads.
        feedforward_dims: FFN hidden width.
        dropout: Dropout in attention, after the activation and on both
            residual branches.
        pre_norm: Normalise before each sub-layer instead of after it.
    """

    def __init__(self, embed_dims: int, num_heads: int, feedforward_dims: int,
                 dropout: float = 0.1, pre_norm: bool = False) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=dropout,
                                               batch_first=True)
        self.linear1 = nn.Linear(embed_dims, feedforward_dims)
        self.linear2 = nn.Linear(feedforward_dims, embed_dims)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.dropout = nn.Dropout(dropout)
        self.pre_norm = pre_norm

    def _attn(self, x: Tensor, pos: Tensor) -> Tensor:
        q = k = x + pos
        return self.dropout(self.self_attn(q, k, value=x, need_weights=False)[0])

    def _ffn(self, x: Tensor) -> Tensor:
        return self.dropout(feed_forward(x, self.linear1, self.linear2, self.dropout))

    def forward(self, src: Tensor, pos: Tensor) -> Tensor:
        """Args: src, pos (B, S, C). Returns (B, S, C)."""
        if self.pre_norm:
            src = src + self._attn(self.norm1(src), pos)
            return src + self._ffn(self.norm2(src))
        src = self.norm1(src + self._attn(src, pos))
        return self.norm2(src + self._ffn(src))


class TransformerEncoder(nn.Module):
    """Stack of encoder layers (``layers.{i}``), a final ``norm`` when pre-norm.

    Args:
        num_layers: Encoder layers.
        embed_dims: Width C.
        num_heads: Attention heads.
        feedforward_dims: FFN hidden width.
        dropout: Dropout rate.
        pre_norm: Pre-norm layers plus a final LayerNorm.
    """

    def __init__(self, num_layers: int, embed_dims: int, num_heads: int,
                 feedforward_dims: int, dropout: float = 0.1, pre_norm: bool = False) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(embed_dims, num_heads, feedforward_dims, dropout, pre_norm)
            for _ in range(num_layers))
        self.norm = nn.LayerNorm(embed_dims) if pre_norm else None

    def forward(self, src: Tensor, pos: Tensor) -> Tensor:
        """Args: src, pos (B, S, C). Returns (B, S, C)."""
        for layer in self.layers:
            src = layer(src, pos)
        return src if self.norm is None else self.norm(src)


class MapTransformerEncoder(nn.Module):
    """Transformer encoder over the pixels of one feature map (``encoder``).

    Official ``TransformerEncoderOnly``: every weight matrix is re-initialised
    with xavier-uniform after construction.

    Args:
        num_layers: Encoder layers.
        embed_dims: Width C.
        num_heads: Attention heads.
        feedforward_dims: FFN hidden width.
        dropout: Dropout rate.
        pre_norm: Pre-norm layers plus a final LayerNorm.
    """

    def __init__(self, num_layers: int, embed_dims: int, num_heads: int,
                 feedforward_dims: int, dropout: float = 0.1, pre_norm: bool = False) -> None:
        super().__init__()
        self.encoder = TransformerEncoder(num_layers, embed_dims, num_heads, feedforward_dims,
                                          dropout, pre_norm)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, x: Tensor, pos: Tensor) -> Tensor:
        """Encode a feature map.

        Args:
            x: Feature map, shape (B, C, h, w).
            pos: Positional encoding, shape (B, C, h, w).

        Returns:
            Encoded map, shape (B, C, h, w).
        """
        b, c, h, w = x.shape
        out = self.encoder(x.flatten(2).transpose(1, 2), pos.flatten(2).transpose(1, 2))
        return out.transpose(1, 2).reshape(b, c, h, w)


@MODELS.register_module()
class TransformerEncoderPixelDecoder(FPNPixelDecoder):
    """MaskFormer's FPN pixel decoder with a transformer encoder on the top level.

    Args:
        in_channels: Channels of the backbone outputs, fine to coarse.
        strides: Strides of the backbone outputs (e.g. ``[4, 8, 16, 32]``).
        feat_channels: FPN and encoder width (official ``conv_dim``).
        out_channels: Mask-embedding channels (official ``mask_dim``).
        num_transformer_levels: How many of the coarsest FPN outputs are
            returned as ``multi_scale_features`` (see :class:`FPNPixelDecoder`).
        num_encoder_layers: Transformer encoder layers (6).
        num_heads: Attention heads (8).
        feedforward_dims: Encoder FFN width (2048).
        dropout: Encoder dropout (0.1).
        pre_norm: Pre-norm encoder (False officially).
        num_groups: GroupNorm groups of the FPN convs.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 in_channels: Sequence[int] = (256, 512, 1024, 2048),
                 strides: Sequence[int] = (4, 8, 16, 32),
                 feat_channels: int = 256,
                 out_channels: int = 256,
                 num_transformer_levels: int = 3,
                 num_encoder_layers: int = 6,
                 num_heads: int = 8,
                 feedforward_dims: int = 2048,
                 dropout: float = 0.1,
                 pre_norm: bool = False,
                 num_groups: int = 32,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(in_channels, strides, feat_channels, out_channels,
                         num_transformer_levels, num_groups, init_cfg)
        if feat_channels % num_heads != 0 or feat_channels % 2 != 0:
            raise ValueError(f'feat_channels={feat_channels} must be even and divisible by '
                             f'num_heads={num_heads}')
        self.input_proj = nn.Conv2d(self.in_channels[-1], feat_channels, kernel_size=1)
        c2_xavier_fill(self.input_proj)
        self.transformer = MapTransformerEncoder(num_encoder_layers, feat_channels, num_heads,
                                                 feedforward_dims, dropout, pre_norm)
        self.pe_layer = SinePositionalEncoding(feat_channels // 2, normalize=True)
        # the top conv now reads the encoder output (feat_channels), not the backbone
        setattr(self, f'layer_{self.num_levels}', Conv2dNorm(feat_channels, feat_channels, 3,
                                                             num_groups, relu=True))

    def forward_coarsest(self, x: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        """Top of the pyramid: ``input_proj`` -> encoder -> ``layer_{n}``.

        Args:
            x: Coarsest backbone output, shape (B, C_n, h, w).

        Returns:
            tuple: the pyramid top and the encoder output, both
            (B, feat_channels, h, w).
        """
        encoded = self.transformer(self.input_proj(x), self.pe_layer(x))
        return getattr(self, f'layer_{self.num_levels}')(encoded), encoded
