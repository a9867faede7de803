"""FPN pixel decoder of MaskFormer (official ``BasePixelDecoder``).

A top-down feature pyramid: the coarsest backbone output goes through a 3x3
conv (``layer_{n}``); every finer output gets a 1x1 lateral conv
(``adapter_{i}``), is added to the nearest-upsampled coarser map and goes
through a 3x3 conv (``layer_{i}``). A 3x3 conv (``mask_features``) on the
finest map gives the per-pixel mask embeddings. Indices count from 1 at the
finest input, as in the official checkpoints (``adapter_1`` is res2).
"""
from typing import List, Optional, Sequence, Tuple

import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmseg_maskformer.registry import MODELS
from .base import (Conv2dNorm, PixelDecoderOutput, c2_xavier_fill, check_num_inputs,
                   check_pixel_decoder_args)


@MODELS.register_module()
class FPNPixelDecoder(BaseModule):
    """MaskFormer's FPN pixel decoder.

    Args:
        in_channels: Channels of the backbone outputs, fine to coarse
            (e.g. ``[256, 512, 1024, 2048]`` for res2-res5).
        strides: Strides of the backbone outputs (e.g. ``[4, 8, 16, 32]``).
        feat_channels: FPN width (official ``conv_dim``).
        out_channels: Mask-embedding channels (official ``mask_dim``).
        num_transformer_levels: How many of the coarsest FPN outputs are
            returned as ``multi_scale_features`` (Mask2Former's
            ``maskformer_num_feature_levels``, always 3 officially).
        num_groups: GroupNorm groups of every conv but ``mask_features``.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 in_channels: Sequence[int] = (256, 512, 1024, 2048),
                 strides: Sequence[int] = (4, 8, 16, 32),
                 feat_channels: int = 256,
                 out_channels: int = 256,
                 num_transformer_levels: int = 3,
                 num_groups: int = 32,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        check_pixel_decoder_args(in_channels, strides, num_transformer_levels)
        self.in_channels = list(in_channels)
        self.strides = list(strides)
        self.feat_channels = feat_channels
        self.out_channels = out_channels
        self.num_transformer_levels = num_transformer_levels
        self.num_levels = len(in_channels)
        for i, channels in enumerate(self.in_channels[:-1]):
            setattr(self, f'adapter_{i + 1}', Conv2dNorm(channels, feat_channels, 1, num_groups))
            setattr(self, f'layer_{i + 1}', Conv2dNorm(feat_channels, feat_channels, 3,
                                                      num_groups, relu=True))
        setattr(self, f'layer_{self.num_levels}', Conv2dNorm(self.in_channels[-1], feat_channels,
                                                             3, num_groups, relu=True))
        self.mask_features = nn.Conv2d(feat_channels, out_channels, kernel_size=3, padding=1)
        c2_xavier_fill(self.mask_features)

    def forward_coarsest(self, x: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        """Top of the pyramid: ``layer_{n}`` on the coarsest input.

        Args:
            x: Coarsest backbone output, shape (B, C_n, h, w).

        Returns:
            tuple: the pyramid top (B, feat_channels, h, w) and the transformer
            encoder features (None here: the FPN has no encoder).
        """
        return getattr(self, f'layer_{self.num_levels}')(x), None

    def forward(self, feats: Sequence[Tensor]) -> PixelDecoderOutput:
        """Decode backbone features.

        Args:
            feats: Backbone outputs, fine to coarse, each (B, C_i, H/s_i, W/s_i).

        Returns:
            PixelDecoderOutput: ``mask_features`` (B, out_channels, H/s_1,
            W/s_1); ``multi_scale_features``: the FPN outputs of the
            ``num_transformer_levels`` coarsest levels, coarse to fine, each
            (B, feat_channels, H/s_i, W/s_i); ``transformer_encoder_features``
            from :meth:`forward_coarsest`.
        """
        check_num_inputs(feats, self.in_channels)
        y, encoder_features = self.forward_coarsest(feats[-1])
        outs: List[Tensor] = [y]
        for i in range(self.num_levels - 2, -1, -1):
            lateral = getattr(self, f'adapter_{i + 1}')(feats[i])
            y = lateral + F.interpolate(y, size=lateral.shape[-2:], mode='nearest')
            y = getattr(self, f'layer_{i + 1}')(y)
            outs.append(y)
        return PixelDecoderOutput(self.mask_features(y), outs[:self.num_transformer_levels],
                                  encoder_features)
