"""MaskFormer (v1) head: pixel decoder + standard transformer decoder + criterion.

The official recipes, which are this head's defaults:

* semantic: FPN pixel decoder; the transformer decoder reads the backbone's
  coarsest feature (``transformer_in_feature='res5'``);
* panoptic "+ 6 Enc": a transformer-encoder pixel decoder; the decoder reads
  its encoder output (``transformer_in_feature='transformer_encoder'``);
* loss: Hungarian matching with class 1.0, focal 20.0, dice 1.0 on full
  masks; CE 1.0 (no-object 0.1), focal 20.0, dice 1.0 on every layer.
"""
import copy
import inspect
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mmengine.model import BaseModule
from torch import Tensor, nn

from mmseg_maskformer.registry import MODELS
from .base import MaskClassificationHeadMixin, check_feature_channels
from ..decoders import StandardTransformerDecoder

TRANSFORMER_IN_FEATURES = ('res5', 'transformer_encoder', 'multi_scale_pixel_decoder')

DEFAULT_PIXEL_DECODER: Dict[str, Any] = dict(type='FPNPixelDecoder')

# MaskFormer v1 loss (official mask_former_model.py: matcher cost_class=1,
# cost_mask=MASK_WEIGHT, cost_dice=DICE_WEIGHT; weights 1 / 20 / 1, eos 0.1).
DEFAULT_CRITERION: Dict[str, Any] = dict(
    type='MaskFormerCriterion',
    matcher=dict(type='HungarianPointMatcher', cls_weight=1.0, mask_weight=20.0,
                 dice_weight=1.0, num_points=0, mask_cost='focal'),
    cls_weight=1.0,
    mask_weight=20.0,
    dice_weight=1.0,
    no_object_weight=0.1,
    mask_loss='focal',
    num_points=0,
    deep_supervision=True)


def _accepts(cfg_type: Any, arg: str) -> bool:
    """Whether the registered class ``cfg_type`` takes the keyword ``arg``."""
    cls = MODELS.get(cfg_type) if isinstance(cfg_type, str) else cfg_type
    if cls is None:
        return False  # MODELS.build reports the unknown type
    params = inspect.signature(cls).parameters.values()
    return any(p.name == arg or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


@MODELS.register_module()
class MaskFormerDecodeHead(MaskClassificationHeadMixin, BaseModule):
    """MaskFormer v1 decode head (semantic and panoptic share it).

    Args:
        num_classes: Number of classes K.
        pixel_decoder: Config of a registered pixel decoder (FPN by default);
            ``in_channels`` (and ``strides`` when it takes them) are filled
            from this head's arguments when missing. Its forward returns
            ``mask_features``, ``multi_scale_features`` and
            ``transformer_encoder_features``.
        transformer_decoder: Keyword arguments of
            :class:`StandardTransformerDecoder` (``num_classes``,
            ``in_channels`` and ``mask_dims`` are derived).
        criterion: Config of the loss; the v1 recipe by default;
            ``num_classes`` is derived.
        transformer_in_feature: Memory of the transformer decoder: ``'res5'``
            (coarsest backbone output), ``'transformer_encoder'`` (the pixel
            decoder's encoder output) or ``'multi_scale_pixel_decoder'`` (the
            first, coarsest, of the pixel decoder's multi-scale features).
        in_channels: Channels of the backbone outputs, fine to coarse.
        strides: Strides of the backbone outputs.
        in_index: Which backbone outputs to use, in fine-to-coarse order; all
            outputs in their order by default.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 num_classes: int,
                 pixel_decoder: Optional[dict] = None,
                 transformer_decoder: Optional[dict] = None,
                 criterion: Optional[dict] = None,
                 transformer_in_feature: str = 'res5',
                 in_channels: Sequence[int] = (256, 512, 1024, 2048),
                 strides: Sequence[int] = (4, 8, 16, 32),
                 in_index: Optional[Sequence[int]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if transformer_in_feature not in TRANSFORMER_IN_FEATURES:
            raise ValueError(f'transformer_in_feature must be one of {TRANSFORMER_IN_FEATURES}, '
                             f'got {transformer_in_feature!r}')
        self.num_classes = num_classes
        self.transformer_in_feature = transformer_in_feature
        self.in_channels = [int(c) for c in in_channels]
        self.in_index = None if in_index is None else [int(i) for i in in_index]
        if self.in_index is not None and len(self.in_index) != len(self.in_channels):
            raise ValueError(f'in_index {self.in_index} selects {len(self.in_index)} backbone '
                             f'outputs but in_channels lists {len(self.in_channels)}')
        self.pixel_decoder = self._build_pixel_decoder(pixel_decoder, strides)
        self.predictor = self._build_predictor(transformer_decoder)
        criterion = copy.deepcopy(DEFAULT_CRITERION if criterion is None else dict(criterion))
        if criterion.setdefault('num_classes', num_classes) != num_classes:
            raise ValueError(f'criterion.num_classes={criterion["num_classes"]} differs from '
                             f'the head num_classes={num_classes}; set it in one place only')
        self.criterion = MODELS.build(criterion)

    def _build_pixel_decoder(self, cfg: Optional[dict], strides: Sequence[int]) -> nn.Module:
        """Build the pixel decoder, filling and checking its input widths."""
        cfg = copy.deepcopy(DEFAULT_PIXEL_DECODER if cfg is None else dict(cfg))
        cfg.setdefault('in_channels', list(self.in_channels))
        if _accepts(cfg.get('type'), 'strides'):
            cfg.setdefault('strides', list(strides))
        pixel_decoder = MODELS.build(cfg)
        built = [int(c) for c in getattr(pixel_decoder, 'in_channels', self.in_channels)]
        if built != self.in_channels:
            raise ValueError(f'pixel_decoder.in_channels={built} differs from the head '
                             f'in_channels={self.in_channels}; set it in the head only')
        return pixel_decoder

    def _build_predictor(self, cfg: Optional[dict]) -> StandardTransformerDecoder:
        """Build the transformer decoder with widths derived from the inputs."""
        cfg = dict(cfg or {})
        if self.transformer_in_feature == 'res5':
            memory_channels = self.in_channels[-1]
        else:
            memory_channels = int(self.pixel_decoder.feat_channels)
        sources = (('in_channels', memory_channels,
                    f'the channels of the {self.transformer_in_feature!r} memory'),
                   ('mask_dims', int(self.pixel_decoder.out_channels),
                    'the pixel decoder out_channels'))
        for key, value, source in sources:
            if cfg.setdefault(key, value) != value:
                raise ValueError(f'transformer_decoder.{key}={cfg[key]} does not match {source} '
                                 f'({value}); remove it from transformer_decoder (it is derived)')
        if cfg.setdefault('num_classes', self.num_classes) != self.num_classes:
            raise ValueError(f'transformer_decoder.num_classes={cfg["num_classes"]} differs '
                             f'from the head num_classes={self.num_classes}')
        return StandardTransformerDecoder(**cfg)

    def forward(self, feats: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        """Predict classes and masks.

        Args:
            feats: Backbone outputs, fine to coarse (after ``in_index``), each
                (B, C_i, H/s_i, W/s_i).

        Returns:
            tuple: class logits per decoder layer, each (B, Q, K + 1), and mask
            logits per layer, each (B, Q, H/4, W/4); the last entries are final.
        """
        if self.in_index is not None:
            feats = [feats[i] for i in self.in_index]
        check_feature_channels(feats, self.in_channels, type(self).__name__)
        outputs = self.pixel_decoder(feats)
        return self.predictor(self._transformer_input(feats, outputs), outputs.mask_features)

    def _transformer_input(self, feats: Sequence[Tensor], outputs: Any) -> Tensor:
        """The memory map selected by ``transformer_in_feature``, (B, C, H_m, W_m)."""
        name = type(self.pixel_decoder).__name__
        if self.transformer_in_feature == 'res5':
            return feats[-1]
        if self.transformer_in_feature == 'transformer_encoder':
            memory = outputs.transformer_encoder_features
            if memory is None:
                raise RuntimeError(
                    f"transformer_in_feature='transformer_encoder' needs a pixel decoder with "
                    f'a transformer encoder (e.g. TransformerEncoderPixelDecoder), but {name} '
                    "returns no transformer_encoder_features; use transformer_in_feature="
                    "'res5' or change the pixel decoder")
            return memory
        if not outputs.multi_scale_features:
            raise RuntimeError(f"transformer_in_feature='multi_scale_pixel_decoder' needs "
                               f'multi-scale features, but {name} returns none')
        return outputs.multi_scale_features[0]
