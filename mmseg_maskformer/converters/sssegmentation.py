"""sssegmentation MaskFormer checkpoints -> this toolbox (the parts that map).

sssegmentation's MaskFormer (``ssseg/modules/models/segmentors/maskformer/``,
zoo files ``maskformer_swin{tiny,small,base}_ade20k.pth``) holds, under these
top-level names (stable from its 2021 to its 2024 versions):

* ``backbone_net.*``: its ``SwinTransformer``, a copy of mmseg's with the same
  parameter names (``patch_embed.projection``, ``stages.{s}.blocks.{b}.attn.
  w_msa.*``, ``ffn.layers.{0.0,1}``, ``stages.{s}.downsample.{norm,reduction}``,
  ``norm{i}``). It reorders the official Swin release's patch-merging weights
  into the ``nn.Unfold`` order when it loads the ImageNet weights, so a
  trained checkpoint already holds mmseg's order: the keys map one to one and
  no tensor is reordered.
* ``decoder_predictor.*``: Detectron2's MaskFormer ``TransformerPredictor``
  under the same names as ours (``transformer.decoder.layers.{i}.{self_attn,
  multihead_attn,linear1,linear2,norm1,norm2,norm3}``, ``transformer.decoder.
  norm``, ``query_embed``, ``input_proj``, ``class_embed``, ``mask_embed.
  layers.{0,1,2}``); the zoo configs use no transformer encoder layer
  (``enc_layers=0``), 6 decoder layers, 256 channels and 100 queries, as ours.
* ``ppm_net.*``, ``lateral_convs.*``, ``fpn_convs.*``, ``decoder_mask.*``: its
  pixel decoder, which is **not** the official MaskFormer one. It is a UPerNet
  style PPM + FPN: a pyramid pooling module on the last backbone level (pool
  scales 1, 2, 3, 6; 1x1 conv + BN + ReLU per scale, then a 3x3 conv + BN +
  ReLU over the concatenation) replaces the official 3x3 conv on res5; the
  lateral 1x1 convs are followed by BN **and ReLU** (the official adapters
  have GroupNorm and no activation); every conv has 512 output channels
  (``feats_channels``) with (Sync)BatchNorm, against 256 with GroupNorm in
  ours; ``decoder_mask`` is a 3x3 conv 512 -> 256. Versions before mid-2023
  also hold a fourth, unused ``fpn_convs.3``. None of these tensors has a
  counterpart in our ``FPNPixelDecoder`` (other layers, other widths, BN
  statistics instead of GroupNorm), so they are reported as ``unmatched`` and
  the model's ``decode_head.pixel_decoder.*`` stays unfilled: a converted
  file initialises the backbone and the transformer predictor only and needs
  training of the pixel decoder before use.
* ``criterion.empty_weight``: a training buffer, dropped.
"""
from collections import OrderedDict
from typing import Any, List, Mapping

from .common import ConversionResult, Rule, apply_rules, unwrap_state_dict

#: Top-level names of sssegmentation's PPM + FPN pixel decoder (no counterpart here).
PIXEL_DECODER_PREFIXES = ('ppm_net.', 'lateral_convs.', 'fpn_convs.', 'decoder_mask.')

_PREDICTOR = r'decoder_predictor\.'
_RULES: List[Rule] = [
    (r'backbone_net\.(.+)', r'backbone.\1'),
    (_PREDICTOR + r'(transformer\.decoder\.layers\.\d+\.'
     r'(?:self_attn|multihead_attn)\.(?:in_proj_weight|in_proj_bias|out_proj\.weight|'
     r'out_proj\.bias))', r'decode_head.predictor.\1'),
    (_PREDICTOR + r'(transformer\.decoder\.layers\.\d+\.'
     r'(?:linear1|linear2|norm1|norm2|norm3)\.(?:weight|bias))', r'decode_head.predictor.\1'),
    (_PREDICTOR + r'(transformer\.decoder\.norm\.(?:weight|bias))', r'decode_head.predictor.\1'),
    (_PREDICTOR + r'(query_embed\.weight|input_proj\.(?:weight|bias)|'
     r'class_embed\.(?:weight|bias)|mask_embed\.layers\.[0-2]\.(?:weight|bias))',
     r'decode_head.predictor.\1'),
]
_DROP = (r'criterion\..*', )


def sssegmentation_state_dict(checkpoint: Mapping[str, Any]) -> 'OrderedDict[str, Any]':
    """The model weights inside a loaded sssegmentation checkpoint.

    sssegmentation saves ``{'model': ..., 'optimizer': ..., 'epoch': ...}``;
    a bare state dict or an OpenMMLab ``{'state_dict': ...}`` is accepted too.
    A ``module.`` prefix (data-parallel wrapper) is removed.
    """
    weights = unwrap_state_dict(checkpoint, ('model', 'state_dict'))
    return OrderedDict((key[len('module.'):] if key.startswith('module.') else key, value)
                       for key, value in weights.items())


def convert_sssegmentation_maskformer(state_dict: Mapping[str, Any]) -> ConversionResult:
    """Converts an sssegmentation MaskFormer state dict to our key names.

    Args:
        state_dict: The ``model`` entry of an sssegmentation checkpoint (see
            :func:`sssegmentation_state_dict`).

    Returns:
        Our ``backbone.*`` and ``decode_head.predictor.*`` tensors (values
        unchanged). The PPM + FPN pixel decoder keys (see
        :data:`PIXEL_DECODER_PREFIXES`), transformer encoder layers and any
        key of another architecture are ``unmatched``;
        ``criterion.empty_weight`` is ``dropped``.
    """
    return apply_rules(state_dict, _RULES, drop=_DROP)


def unmatched_pixel_decoder_keys(result: ConversionResult) -> List[str]:
    """The unmatched keys that belong to sssegmentation's own pixel decoder."""
    return [key for key in result.unmatched if key.startswith(PIXEL_DECODER_PREFIXES)]


__all__ = ['PIXEL_DECODER_PREFIXES', 'convert_sssegmentation_maskformer',
           'sssegmentation_state_dict', 'unmatched_pixel_decoder_keys']
