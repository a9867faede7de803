"""Mask2Former head: pixel decoder + masked-attention decoder + criterion."""
from typing import List, Optional, Sequence, Tuple

from mmengine.model import BaseModule
from torch import Tensor

from mmseg_maskformer.registry import MODELS
from .base import MaskClassificationHeadMixin, check_feature_channels
from ..decoders import MaskedAttentionDecoder
from ..decoders.masked_attention_decoder import MaskPrediction
from ..layers.factored_masks import FactoredMasks


@MODELS.register_module()
class Mask2FormerDecodeHead(MaskClassificationHeadMixin, BaseModule):
    """Mask2Former decode head (semantic, panoptic and instance share it).

    Args:
        num_classes: Number of classes K.
        pixel_decoder: Config of a registered pixel decoder (returning a
            ``PixelDecoderOutput``); ``in_channels`` and ``strides`` are filled
            from this head's arguments when missing.
        transformer_decoder: Keyword arguments of :class:`MaskedAttentionDecoder`
            (``num_classes``, ``in_channels`` and ``mask_dims`` are derived).
        criterion: Config of the loss (e.g. ``MaskFormerCriterion``);
            ``num_classes`` is derived.
        in_channels: Channels of the backbone outputs, fine to coarse.
        strides: Strides of the backbone outputs.
        in_index: Which backbone outputs to use, in fine-to-coarse order (e.g.
            ``[3, 2, 1, 0]`` for a backbone that returns coarse-to-fine maps
            such as mmseg's ``UNet``); all outputs in their order by default.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 num_classes: int,
                 pixel_decoder: dict,
                 transformer_decoder: dict,
                 criterion: dict,
                 in_channels: Sequence[int] = (256, 512, 1024, 2048),
                 strides: Sequence[int] = (4, 8, 16, 32),
                 in_index: Optional[Sequence[int]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_classes = num_classes
        self.in_index = None if in_index is None else [int(i) for i in in_index]
        if self.in_index is not None and len(self.in_index) != len(in_channels):
            raise ValueError(f'in_index {self.in_index} selects {len(self.in_index)} backbone '
                             f'outputs but in_channels lists {len(in_channels)}')
        self.in_channels = [int(c) for c in in_channels]
        pixel_decoder = dict(pixel_decoder)
        pixel_decoder.setdefault('in_channels', list(self.in_channels))
        pixel_decoder.setdefault('strides', list(strides))
        self.pixel_decoder = MODELS.build(pixel_decoder)
        built = [int(c) for c in getattr(self.pixel_decoder, 'in_channels', self.in_channels)]
        if built != self.in_channels:
            raise ValueError(f'pixel_decoder.in_channels={built} differs from the head '
                             f'in_channels={self.in_channels}; set it in the head only')
        decoder_cfg = dict(transformer_decoder)
        for key, value in (('in_channels', self.pixel_decoder.feat_channels),
                           ('mask_dims', self.pixel_decoder.out_channels),
                           ('num_levels', self.pixel_decoder.num_transformer_levels)):
            if decoder_cfg.setdefault(key, value) != value:
                raise ValueError(
                    f'transformer_decoder.{key}={decoder_cfg[key]} does not match the pixel '
                    f'decoder ({value}); remove it from transformer_decoder (it is derived) or '
                    'change the pixel decoder')
        self.predictor = MaskedAttentionDecoder(num_classes=num_classes, **decoder_cfg)
        criterion = dict(criterion)
        if criterion.setdefault('num_classes', num_classes) != num_classes:
            raise ValueError(f'criterion.num_classes={criterion["num_classes"]} differs from '
                             f'the head num_classes={num_classes}; set it in one place only')
        self.criterion = MODELS.build(criterion)

    def forward(self,
                feats: Sequence[Tensor],
                final_only: bool = False,
                factored: bool = False) -> Tuple[List[Tensor], List[MaskPrediction]]:
        """Predict classes and masks.

        Args:
            feats: Backbone outputs, fine to coarse (after ``in_index``), each
                (B, C_i, H/s_i, W/s_i).
            final_only: Only the final prediction (inference); the intermediate
                masks are then made at the attention resolution only
                (:meth:`MaskedAttentionDecoder.forward`).
            factored: Masks as :class:`FactoredMasks` (what :meth:`loss`
                passes to the criterion).

        Returns:
            tuple: class logits per layer, each (B, Q, K + 1), and mask logits
            per layer, each (B, Q, H/4, W/4) or factored; the last entries are
            final.
            One entry each with ``final_only``.

        Raises:
            ValueError: When the feature widths differ from ``in_channels``,
                saying which config keys to change.
        """
        if self.in_index is not None:
            feats = [feats[i] for i in self.in_index]
        check_feature_channels(feats, self.in_channels, type(self).__name__)
        pixel_out = self.pixel_decoder(feats)
        return self.predictor(pixel_out.multi_scale_features, pixel_out.mask_features,
                              final_only=final_only, factored=factored)

    def loss_predictions(self,
                         feats: Sequence[Tensor]) -> Tuple[List[Tensor], List[FactoredMasks]]:
        """All layers' predictions with factored masks, for the criterion."""
        return self(feats, factored=True)

    def predict(self, feats: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
        """Final-layer predictions: class logits (B, Q, K + 1), masks (B, Q, H/4, W/4)."""
        cls_preds, mask_preds = self(feats, final_only=True)
        return cls_preds[-1], mask_preds[-1]
