"""Multi-scale deformable-attention pixel decoder of Mask2Former.

A 6-layer deformable transformer encoder runs over the 1/8-1/32 backbone
features; an FPN step adds the 1/4 features and a 1x1 conv produces the
per-pixel mask embeddings. Module names follow the official implementation
(``input_proj``, ``transformer.level_embed``, ``transformer.encoder.layers``,
``adapter_1``, ``layer_1``, ``mask_features``) so official weights map 1:1.
"""
import math
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmseg_maskformer.registry import MODELS
from ..layers import MSDeformAttn, SinePositionalEncoding, feed_forward
from ..layers.ms_deform_attn import flatten_levels
from .base import Conv2dNorm, PixelDecoderOutput, check_num_inputs, check_pixel_decoder_args


class DeformableEncoderLayer(nn.Module):
    """Post-norm encoder layer: deformable self-attention then FFN.

    Args:
        embed_dims: Width C.
        num_levels: Feature levels L.
        num_heads: Attention heads.
        num_points: Sampling points per head and level.
        feedforward_dims: FFN hidden width.
        dropout: Dropout rate.
    """

    def __init__(self, embed_dims: int, num_levels: int, num_heads: int, num_points: int,
                 feedforward_dims: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.self_attn = MSDeformAttn(embed_dims, num_levels, num_heads, num_points)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.linear1 = nn.Linear(embed_dims, feedforward_dims)
        self.linear2 = nn.Linear(feedforward_dims, embed_dims)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.dropout = nn.Dropout(dropout)

    def forward(self, src: Tensor, pos: Tensor, reference_points: Tensor,
                spatial_shapes: Tensor, level_start_index: Tensor) -> Tensor:
        """Args: src, pos (B, S, C); reference_points (B, S, L, 2). Returns (B, S, C)."""
        attn = self.self_attn(src + pos, reference_points, src, spatial_shapes,
                              level_start_index)
        src = self.norm1(src + self.dropout(attn))
        ffn = feed_forward(src, self.linear1, self.linear2, self.dropout)
        return self.norm2(src + self.dropout(ffn))


def reference_points(spatial_shapes: Sequence[Tuple[int, int]], batch_size: int,
                     device: torch.device) -> Tensor:
    """Pixel-centre reference points of all levels, shared by every level.

    Args:
        spatial_shapes: ``(H_l, W_l)`` for each of the L levels.
        batch_size: B.
        device: Output device.

    Returns:
        Normalised ``(x, y)`` points, shape (B, S, L, 2), ``S = sum(H_l * W_l)``.
    """
    points = []
    for h, w in spatial_shapes:
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')
        points.append(torch.stack((grid_x.reshape(-1), grid_y.reshape(-1)), -1))
    ref = torch.cat(points, 0)[None, :, None, :]
    return ref.expand(batch_size, -1, len(spatial_shapes), -1)


class DeformableEncoder(nn.Module):
    """Stack of deformable encoder layers with a learned level embedding."""

    def __init__(self, embed_dims: int, num_levels: int, num_layers: int, num_heads: int,
                 num_points: int, feedforward_dims: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.level_embed = nn.Parameter(torch.empty(num_levels, embed_dims))
        self.encoder = nn.Module()
        self.encoder.layers = nn.ModuleList(
            DeformableEncoderLayer(embed_dims, num_levels, num_heads, num_points,
                                   feedforward_dims, dropout) for _ in range(num_layers))
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        for m in self.modules():
            if isinstance(m, MSDeformAttn):
                m.reset_parameters()
        nn.init.normal_(self.level_embed)

    def forward(self, srcs: List[Tensor], pos_embeds: List[Tensor]) -> List[Tensor]:
        """Encode L feature maps jointly.

        Args:
            srcs: Projected features, each (B, C, H_l, W_l).
            pos_embeds: Positional encodings, each (B, C, H_l, W_l).

        Returns:
            Encoded features in the input order, each (B, C, H_l, W_l).
        """
        shapes = [tuple(s.shape[-2:]) for s in srcs]
        src = torch.cat(flatten_levels(srcs), 1)
        pos = torch.cat([
            p + self.level_embed[i].to(p.dtype) for i, p in enumerate(flatten_levels(pos_embeds))
        ], 1)
        spatial_shapes = torch.as_tensor(shapes, dtype=torch.long, device=src.device)
        sizes = [h * w for h, w in shapes]
        level_start_index = torch.as_tensor([0] + sizes[:-1], device=src.device).cumsum(0)
        ref = reference_points(shapes, src.shape[0], src.device)
        for layer in self.encoder.layers:
            src = layer(src, pos, ref, spatial_shapes, level_start_index)
        outs = src.split(sizes, dim=1)
        return [channels_last_maps(o, h, w) for o, (h, w) in zip(outs, shapes)]


def channels_last_maps(tokens: Tensor, height: int, width: int) -> Tensor:
    """View (B, H*W, C) tokens as (B, C, H, W) maps, channels-last, without a copy.

    For a single image the batch stride of the view is that of the whole token
    sequence, and PyTorch then takes the map for a non-contiguous NCHW one
    (``suggest_memory_format``): a resize converts it and returns NCHW. The batch
    stride is set to that of a channels-last map; with one image it is never
    used for addressing.
    """
    b, _, c = tokens.shape
    maps = tokens.transpose(1, 2).reshape(b, c, height, width)
    if b == 1:
        maps = maps.as_strided(maps.shape, (height * width * c, 1, width * c, c))
    return maps


@MODELS.register_module()
class MultiScaleDeformablePixelDecoder(BaseModule):
    """Mask2Former's MSDeformAttn pixel decoder.

    Args:
        in_channels: Channels of the backbone outputs, fine to coarse
            (e.g. ``[256, 512, 1024, 2048]`` for res2-res5).
        strides: Strides of the backbone outputs (e.g. ``[4, 8, 16, 32]``).
        feat_channels: Transformer / FPN width (``conv_dim``).
        out_channels: Mask-embedding channels (``mask_dim``).
        num_transformer_levels: How many of the coarsest inputs enter the
            deformable encoder (3: res3-res5).
        num_encoder_layers: Deformable encoder layers.
        num_heads: Deformable attention heads.
        num_points: Sampling points per head and level.
        feedforward_dims: Encoder FFN width.
        dropout: Encoder dropout.
        num_groups: GroupNorm groups.
        common_stride: Stride of the mask features.
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
                 num_points: int = 4,
                 feedforward_dims: int = 1024,
                 dropout: float = 0.0,
                 num_groups: int = 32,
                 common_stride: int = 4,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        check_pixel_decoder_args(in_channels, strides, num_transformer_levels)
        self.in_channels = list(in_channels)
        self.strides = list(strides)
        self.feat_channels = feat_channels
        self.out_channels = out_channels
        self.num_transformer_levels = num_transformer_levels
        # coarsest first, as the official code orders them
        self.transformer_in = list(range(len(in_channels)))[-num_transformer_levels:][::-1]
        self.input_proj = nn.ModuleList()
        for idx in self.transformer_in:
            proj = nn.Sequential(
                nn.Conv2d(in_channels[idx], feat_channels, kernel_size=1),
                nn.GroupNorm(num_groups, feat_channels))
            nn.init.xavier_uniform_(proj[0].weight, gain=1)
            nn.init.constant_(proj[0].bias, 0)
            self.input_proj.append(proj)
        self.transformer = DeformableEncoder(feat_channels, num_transformer_levels,
                                             num_encoder_layers, num_heads, num_points,
                                             feedforward_dims, dropout)
        self.pe_layer = SinePositionalEncoding(feat_channels // 2, normalize=True)
        min_stride = min(strides[i] for i in self.transformer_in)
        self.num_fpn_levels = int(math.log2(min_stride) - math.log2(common_stride))
        self.fpn_in = list(range(len(in_channels)))[-num_transformer_levels -
                                                     self.num_fpn_levels:-num_transformer_levels]
        # official naming: adapter_1 / layer_1 belong to the finest input
        for i, idx in enumerate(self.fpn_in):
            setattr(self, f'adapter_{i + 1}', Conv2dNorm(in_channels[idx], feat_channels, 1,
                                                        num_groups))
            setattr(self, f'layer_{i + 1}', Conv2dNorm(feat_channels, feat_channels, 3,
                                                      num_groups, relu=True))
        self.mask_features = nn.Conv2d(feat_channels, out_channels, kernel_size=1)
        nn.init.kaiming_uniform_(self.mask_features.weight, a=1)
        nn.init.constant_(self.mask_features.bias, 0)

    def forward(self, feats: Sequence[Tensor]) -> PixelDecoderOutput:
        """Decode backbone features.

        Args:
            feats: Backbone outputs, fine to coarse, each (B, C_i, H/s_i, W/s_i).

        Returns:
            PixelDecoderOutput: ``mask_features`` (B, out_channels, H/4, W/4);
            ``multi_scale_features``: the ``num_transformer_levels`` encoded
            maps, coarse to fine, each (B, feat_channels, H/s, W/s);
            ``transformer_encoder_features``: the encoded coarsest level (the
            same tensor as ``multi_scale_features[0]``), as the official
            decoder returns ``out[0]``.
        """
        check_num_inputs(feats, self.in_channels)
        srcs = [proj(feats[idx]) for proj, idx in zip(self.input_proj, self.transformer_in)]
        pos = [self.pe_layer(s) for s in srcs]
        outs = self.transformer(srcs, pos)
        y = outs[-1]
        for i, idx in reversed(list(enumerate(self.fpn_in))):
            lateral = getattr(self, f'adapter_{i + 1}')(feats[idx])
            # the encoder's maps are channels-last: resizing keeps that layout
            # and so does the in-place sum (mixed layouts are added about 4x slower)
            y = F.interpolate(y, size=lateral.shape[-2:], mode='bilinear',
                              align_corners=False).add_(lateral)
            y = getattr(self, f'layer_{i + 1}')(y)
        return PixelDecoderOutput(self.mask_features(y), outs, outs[0])
