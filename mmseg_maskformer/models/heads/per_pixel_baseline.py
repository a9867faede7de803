"""Per-pixel classification baselines of MaskFormer: PerPixelBaseline and PerPixelBaseline+.

The MaskFormer paper compares mask classification with per-pixel
classification on the same backbone and pixel decoder:

* **PerPixelBaseline**: the FPN pixel decoder's per-pixel embeddings at 1/4
  go through a 1x1 conv (``predictor``) to K class logits per pixel.
* **PerPixelBaseline+**: adds MaskFormer's transformer module and mask
  embedding MLP. K learnable queries, one per class, attend to res5 through a
  6-layer DETR decoder; each query's embedding dotted with the per-pixel
  embeddings gives that class's logit at every pixel (the official
  ``TransformerPredictor`` with ``mask_classification=False``: no class
  head, ``num_queries == num_classes``). With deep supervision every decoder
  layer's logits are supervised. The model then differs from MaskFormer only
  in its formulation: per-pixel instead of mask classification.

Loss (official ``PerPixelBaselineHead.losses``): the logits (B, K, H/4, W/4)
are upsampled bilinearly (fp32) to the target size and scored with
cross-entropy averaged over the non-ignored pixels of the batch (ignore 255,
weight 1.0). An image whose pixels are all ignored contributes nothing; a
batch with no labelled pixel gives a zero loss (the official mean would be
NaN). Targets come from ``gt_sem_seg``, or, when a sample has none, from its
``gt_instances`` painted into a map (unpainted pixels ignored), so the same
data pipelines serve these heads and the mask-classification heads.

Inference through :class:`MaskFormerSegmentor`, like every head: ``predict``
returns K *pseudo-queries*, query k being class k, that the segmentor's
semantic post-processing turns back into per-pixel scores:

* class logits (B, K, K + 1): 0 for the query's own class, -inf for every
  other class and for "no object", so the class probabilities are exactly the
  identity and ``semantic_inference`` returns ``sigmoid(mask_logits)``;
* mask logits (B, K, H/4, W/4): ``log_softmax`` of the per-pixel logits. The
  per-pixel shift ``logsumexp`` is the same for every class and bilinear
  resizing is linear with the same weights for every class, so after the
  segmentor's resizing (to the padded input, crop, to the original size) the
  semantic map is the argmax of the official pipeline's bilinearly resized
  logits (exactly, but for float rounding at near-ties). The scores are ``q / (1 + q)`` with ``q`` the softmax of
  those resized logits times a per-pixel factor in (0, 1] (1 where nothing is
  resized): ``q = s / (1 - s)`` normalised over the classes gives back the
  softmax exactly. Scores never saturate at 1 (``log_softmax <= 0``); only
  classes with log-probability below about -87 (float32) underflow to 0.

Module names follow the official checkpoints (``pixel_decoder.*``;
``predictor.{weight,bias}`` for the baseline; ``predictor.transformer.decoder.
layers.{i}.*``, ``predictor.transformer.decoder.norm``, ``predictor.query_embed``,
``predictor.input_proj``, ``predictor.mask_embed.layers.{0,1,2}`` for "+").
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.structures import SegDataSample
from torch import Tensor, nn

from mmseg_maskformer.registry import MODELS
from ..decoders import StandardTransformerDecoder
from .base import check_feature_channels

DEFAULT_PIXEL_DECODER: Dict[str, Any] = dict(type='FPNPixelDecoder')
TRANSFORMER_IN_FEATURES = ('res5', 'transformer_encoder')


# ------------------------------------------------------------------ pure functions
def per_pixel_cross_entropy(logits: Tensor, targets: Tensor, ignore_index: int = 255) -> Tensor:
    """Cross-entropy of per-pixel logits upsampled to the target size.

    Args:
        logits: Class logits at a coarser stride, shape (B, K, h, w).
        targets: Class indices, shape (B, H, W); ``ignore_index`` marks
            unlabelled pixels.
        ignore_index: Label of ignored pixels.

    Returns:
        Scalar: the mean over the non-ignored pixels of the batch (0 when
        there is none, still connected to ``logits``).
    """
    logits = F.interpolate(logits.float(), size=tuple(targets.shape[-2:]), mode='bilinear',
                           align_corners=False)
    total = F.cross_entropy(logits, targets, ignore_index=ignore_index, reduction='sum')
    return total / (targets != ignore_index).sum().clamp(min=1)


def instances_to_semantic_map(labels: Tensor, masks: Tensor, ignore_index: int = 255) -> Tensor:
    """Paint binary masks into a semantic map.

    Args:
        labels: Class index of each mask, shape (N,).
        masks: Binary masks, shape (N, H, W); overlapping pixels take the
            label of the first mask covering them (semantic targets are
            disjoint).
        ignore_index: Value of pixels covered by no mask.

    Returns:
        Class map, int64 shape (H, W).
    """
    masks = masks.bool()
    if masks.shape[0] == 0:
        return torch.full(masks.shape[-2:], ignore_index, dtype=torch.long, device=masks.device)
    first = masks.to(torch.uint8).argmax(0)  # index of the first mask covering each pixel
    painted = labels.to(device=masks.device, dtype=torch.long)[first]
    return torch.where(masks.any(0), painted, torch.full_like(painted, ignore_index))


def semantic_targets(data_samples: Sequence[SegDataSample], ignore_index: int = 255) -> Tensor:
    """Batch the semantic targets of ``data_samples``, each padded to the batch shape.

    Args:
        data_samples: Samples with ``gt_sem_seg`` (``data`` (1, H, W)) or,
            failing that, ``gt_instances`` (``labels`` (N,), ``masks`` (N, H, W)).
        ignore_index: Label of unlabelled pixels.

    Returns:
        Class maps, int64 shape (B, H, W).
    """
    maps = []
    for ds in data_samples:
        if 'gt_sem_seg' in ds:
            maps.append(ds.gt_sem_seg.data.reshape(ds.gt_sem_seg.data.shape[-2:]).long())
        elif 'gt_instances' in ds:
            maps.append(instances_to_semantic_map(ds.gt_instances.labels, ds.gt_instances.masks,
                                                  ignore_index))
        else:
            raise KeyError('per-pixel heads need data_samples with gt_sem_seg (LoadAnnotations '
                           'then PackMaskFormerInputs) or gt_instances')
    if len({tuple(m.shape) for m in maps}) > 1:
        raise ValueError(f'semantic targets differ in size {[tuple(m.shape) for m in maps]}; '
                         'pad them to one shape in the data preprocessor')
    return torch.stack(maps)


def per_pixel_to_mask_classification(seg_logits: Tensor) -> Tuple[Tensor, Tensor]:
    """K pseudo-queries whose semantic inference reproduces per-pixel classification.

    Args:
        seg_logits: Per-pixel class logits, shape (B, K, h, w).

    Returns:
        tuple: class logits (B, K, K + 1), 0 on the diagonal and -inf
        elsewhere ("no object" included), and mask logits (B, K, h, w), the
        fp32 ``log_softmax`` of ``seg_logits`` over the classes.
    """
    batch, num_classes = seg_logits.shape[:2]
    own_class = torch.eye(num_classes, num_classes + 1, dtype=torch.bool,
                          device=seg_logits.device)
    cls_logits = torch.zeros(own_class.shape, device=seg_logits.device).masked_fill(
        ~own_class, float('-inf'))
    return cls_logits.expand(batch, -1, -1), seg_logits.float().log_softmax(1)


# -------------------------------------------------------- transformer predictor (+)
class PerPixelTransformerDecoder(StandardTransformerDecoder):
    """Class queries -> per-pixel class logits (official ``TransformerPredictor``
    with ``mask_classification=False``; built directly, not registered).

    One learnable query per class attends to a memory map through a stack of
    DETR decoder layers (query content starts at zero, ``query_embed`` is the
    query position, a sine encoding the memory position); the mask-embedding
    MLP of each layer's normalised output dotted with the per-pixel embeddings
    gives the class logits at every pixel.

    Args:
        in_channels: Channels of the memory map.
        num_classes: Number of classes K, which is also the number of queries.
        embed_dims: Query width C (official ``hidden_dim``).
        num_heads: Attention heads.
        num_layers: Decoder layers L.
        feedforward_dims: FFN width.
        mask_dims: Channels of the per-pixel embeddings.
        dropout: Dropout in all sub-layers.
        pre_norm: Pre-norm decoder layers.
        enforce_input_proj: Add the 1x1 input projection even when
            ``in_channels == embed_dims``.
        return_intermediate: Predict from every layer (deep supervision)
            rather than from the last one only.
    """

    def __init__(self,
                 in_channels: int = 2048,
                 num_classes: int = 150,
                 embed_dims: int = 256,
                 num_heads: int = 8,
                 num_layers: int = 6,
                 feedforward_dims: int = 2048,
                 mask_dims: int = 256,
                 dropout: float = 0.1,
                 pre_norm: bool = False,
                 enforce_input_proj: bool = False,
                 return_intermediate: bool = True) -> None:
        super().__init__(in_channels, num_classes, embed_dims, num_classes, num_heads,
                         num_layers, feedforward_dims, mask_dims, dropout, pre_norm,
                         enforce_input_proj)
        del self.class_embed  # one query per class: no classification
        self.return_intermediate = return_intermediate

    def forward(self, memory: Tensor, mask_features: Tensor) -> List[Tensor]:
        """Per-pixel class logits.

        Args:
            memory: Memory map, shape (B, in_channels, H_m, W_m) (res5 at 1/32).
            mask_features: Per-pixel embeddings, shape (B, mask_dims, H/4, W/4).

        Returns:
            Class logits (B, K, H/4, W/4) per layer (L entries, the last
            final) or of the last layer only (one entry).
        """
        hs = self.decode_queries(memory, mask_features)  # (L, B, K, C)
        if not self.return_intermediate:
            hs = hs[-1:]
        logits = torch.einsum('lbqc,bchw->lbqhw', self.mask_embed(hs), mask_features)
        return list(logits.unbind(0))


# ---------------------------------------------------------------------------- heads
class PerPixelHeadBase(BaseModule):
    """Pixel decoder, inputs, loss and prediction shared by the per-pixel heads.

    Subclasses add a ``predictor`` and implement :meth:`forward`.

    Args:
        num_classes: Number of classes K.
        pixel_decoder: Config of a registered pixel decoder (FPN by default);
            ``in_channels`` and ``strides`` are filled from this head's
            arguments when missing.
        in_channels: Channels of the backbone outputs, fine to coarse.
        strides: Strides of the backbone outputs.
        in_index: Which backbone outputs to use, in fine-to-coarse order; all
            outputs in their order by default.
        ignore_index: Label of unlabelled pixels (official ``IGNORE_VALUE``).
        loss_weight: Weight of the cross-entropy of every supervised output.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 num_classes: int,
                 pixel_decoder: Optional[dict] = None,
                 in_channels: Sequence[int] = (256, 512, 1024, 2048),
                 strides: Sequence[int] = (4, 8, 16, 32),
                 in_index: Optional[Sequence[int]] = None,
                 ignore_index: int = 255,
                 loss_weight: float = 1.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_classes = num_classes
        self.in_channels = [int(c) for c in in_channels]
        self.in_index = None if in_index is None else [int(i) for i in in_index]
        if self.in_index is not None and len(self.in_index) != len(self.in_channels):
            raise ValueError(f'in_index {self.in_index} selects {len(self.in_index)} backbone '
                             f'outputs but in_channels lists {len(self.in_channels)}')
        self.ignore_index = ignore_index
        self.loss_weight = loss_weight
        cfg = dict(DEFAULT_PIXEL_DECODER if pixel_decoder is None else pixel_decoder)
        cfg.setdefault('in_channels', list(self.in_channels))
        cfg.setdefault('strides', list(strides))
        self.pixel_decoder = MODELS.build(cfg)

    def select_inputs(self, feats: Sequence[Tensor]) -> List[Tensor]:
        """Apply ``in_index`` and check the widths; feats are (B, C_i, H/s_i, W/s_i)."""
        if self.in_index is not None:
            feats = [feats[i] for i in self.in_index]
        check_feature_channels(feats, self.in_channels, type(self).__name__)
        return list(feats)

    def forward(self, feats: Sequence[Tensor]) -> List[Tensor]:
        """Per-pixel class logits, each (B, K, H/4, W/4), per supervised output
        (the last final)."""
        raise NotImplementedError

    def loss(self, feats: Sequence[Tensor],
             data_samples: Sequence[SegDataSample]) -> Dict[str, Tensor]:
        """Cross-entropy of every output: ``loss_ce`` (final) and ``d{i}.loss_ce``.

        Args:
            feats: Backbone outputs, fine to coarse, each (B, C_i, H/s_i, W/s_i).
            data_samples: Samples with ``gt_sem_seg`` or ``gt_instances``, at
                the padded input size (H, W).
        """
        outputs = self(feats)
        targets = semantic_targets(data_samples, self.ignore_index).to(outputs[-1].device)
        labelled = targets[targets != self.ignore_index]
        bad = labelled[(labelled < 0) | (labelled >= self.num_classes)]
        if bad.numel():
            raise ValueError(f'semantic targets hold labels {bad.unique().tolist()} outside '
                             f'[0, {self.num_classes}) other than ignore_index='
                             f'{self.ignore_index} (reduce_zero_label?)')
        last = len(outputs) - 1
        return {('loss_ce' if i == last else f'd{i}.loss_ce'):
                self.loss_weight * per_pixel_cross_entropy(x, targets, self.ignore_index)
                for i, x in enumerate(outputs)}

    def predict_seg_logits(self, feats: Sequence[Tensor]) -> Tensor:
        """Final per-pixel class logits, shape (B, K, H/4, W/4)."""
        return self(feats)[-1]

    def predict(self, feats: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
        """Pseudo-queries for the segmentor: class logits (B, K, K + 1), mask
        logits (B, K, H/4, W/4); see :func:`per_pixel_to_mask_classification`."""
        return per_pixel_to_mask_classification(self.predict_seg_logits(feats))


@MODELS.register_module()
class PerPixelBaselineHead(PerPixelHeadBase):
    """PerPixelBaseline: pixel decoder + 1x1 conv classifier (``predictor``).

    Args:
        num_classes: Number of classes K.
        **kwargs: Arguments of :class:`PerPixelHeadBase` (``pixel_decoder``,
            ``in_channels``, ``strides``, ``in_index``, ``ignore_index``,
            ``loss_weight``, ``init_cfg``).
    """

    def __init__(self, num_classes: int, **kwargs: Any) -> None:
        super().__init__(num_classes, **kwargs)
        self.predictor = nn.Conv2d(int(self.pixel_decoder.out_channels), num_classes, 1)
        nn.init.kaiming_normal_(self.predictor.weight, mode='fan_out',
                                nonlinearity='relu')  # c2_msra_fill
        nn.init.constant_(self.predictor.bias, 0)

    def forward(self, feats: Sequence[Tensor]) -> List[Tensor]:
        """Args: feats, backbone outputs (B, C_i, H/s_i, W/s_i), fine to coarse.

        Returns: one entry, the class logits (B, K, H/4, W/4).
        """
        mask_features = self.pixel_decoder(self.select_inputs(feats)).mask_features
        return [self.predictor(mask_features)]


@MODELS.register_module()
class PerPixelBaselinePlusHead(PerPixelHeadBase):
    """PerPixelBaseline+: pixel decoder + :class:`PerPixelTransformerDecoder`.

    Args:
        num_classes: Number of classes K (also the number of queries).
        transformer_decoder: Keyword arguments of
            :class:`PerPixelTransformerDecoder` (``num_classes``,
            ``in_channels`` and ``mask_dims`` are derived; there is no
            ``num_queries``: one query per class).
        transformer_in_feature: Memory of the decoder: ``'res5'`` (coarsest
            backbone output) or ``'transformer_encoder'`` (the pixel
            decoder's encoder output).
        deep_supervision: Supervise every decoder layer (official ``True``).
        **kwargs: Arguments of :class:`PerPixelHeadBase`.
    """

    def __init__(self,
                 num_classes: int,
                 transformer_decoder: Optional[dict] = None,
                 transformer_in_feature: str = 'res5',
                 deep_supervision: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(num_classes, **kwargs)
        if transformer_in_feature not in TRANSFORMER_IN_FEATURES:
            raise ValueError(f'transformer_in_feature must be one of {TRANSFORMER_IN_FEATURES}, '
                             f'got {transformer_in_feature!r}')
        self.transformer_in_feature = transformer_in_feature
        self.deep_supervision = deep_supervision
        self.predictor = self._build_predictor(dict(transformer_decoder or {}))

    def _build_predictor(self, cfg: dict) -> PerPixelTransformerDecoder:
        """Build the decoder with its widths and query count derived."""
        if 'num_queries' in cfg:
            raise ValueError('PerPixelBaselinePlusHead has one query per class: remove '
                             f'transformer_decoder.num_queries={cfg["num_queries"]}')
        memory_channels = (self.in_channels[-1] if self.transformer_in_feature == 'res5' else
                           int(self.pixel_decoder.feat_channels))
        for key, value in (('in_channels', memory_channels),
                           ('mask_dims', int(self.pixel_decoder.out_channels)),
                           ('num_classes', self.num_classes),
                           ('return_intermediate', self.deep_supervision)):
            if cfg.setdefault(key, value) != value:
                raise ValueError(f'transformer_decoder.{key}={cfg[key]} differs from the value '
                                 f'derived from the head ({value}); remove it')
        return PerPixelTransformerDecoder(**cfg)

    def forward(self, feats: Sequence[Tensor]) -> List[Tensor]:
        """Args: feats, backbone outputs (B, C_i, H/s_i, W/s_i), fine to coarse.

        Returns: class logits (B, K, H/4, W/4) per decoder layer with deep
        supervision, else of the last layer only; the last entry is final.
        """
        feats = self.select_inputs(feats)
        outputs = self.pixel_decoder(feats)
        if self.transformer_in_feature == 'res5':
            memory = feats[-1]
        elif outputs.transformer_encoder_features is None:
            raise RuntimeError("transformer_in_feature='transformer_encoder' needs a pixel "
                               'decoder with a transformer encoder (e.g. '
                               f'TransformerEncoderPixelDecoder), not '
                               f'{type(self.pixel_decoder).__name__}')
        else:
            memory = outputs.transformer_encoder_features
        return self.predictor(memory, outputs.mask_features)
