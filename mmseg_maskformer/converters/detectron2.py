"""Official Detectron2 MaskFormer / Mask2Former checkpoints into our key names.

Our module names mirror the official ones, so a checkpoint converts by
prefixes: ``sem_seg_head.`` -> ``decode_head.`` and ``backbone.`` -> the mmseg
backbone's names (:mod:`.backbones`). What this module adds:

* safe loading of the ``.pkl`` files (:func:`load_detectron2_checkpoint`);
* the two older layouts the official code still upgrades on load: MaskFormer
  heads saved before the ``pixel_decoder.`` submodule existed
  (``sem_seg_head.adapter_1`` for ``sem_seg_head.pixel_decoder.adapter_1``) and
  Mask2Former decoders whose ``query_feat`` was called ``static_query``
  (:func:`upgrade_head_keys`);
* an explicit list of the head parameters of each architecture, so a key of
  another architecture or of an option we do not implement is reported as
  unmatched instead of being renamed blindly (:func:`head_patterns`);
* ImageNet backbone files of the Detectron2 model zoo, in Detectron2 or Caffe2
  naming (:func:`convert_detectron2_backbone`).

Example:
    >>> weights = load_detectron2_checkpoint('model_final_94dc52.pkl')
    >>> result = convert_detectron2(weights)
    >>> print(result.summary())
"""
import zipfile
from collections import OrderedDict
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

import numpy as np
from torch import Tensor

from ..engine.checkpoint import load_checkpoint_safe, load_pickle_safe
from .backbones import (caffe2_resnet_to_mmseg, detectron2_resnet_to_mmseg, strip_prefix,
                        swin_official_to_mmseg)
from .common import ConversionResult, apply_rules, unwrap_state_dict

__all__ = [
    'ARCHITECTURES', 'BACKBONES', 'load_detectron2_checkpoint', 'detect_architecture',
    'detect_backbone', 'upgrade_head_keys', 'head_patterns', 'convert_detectron2',
    'convert_detectron2_backbone'
]

ARCHITECTURES = ('mask2former', 'maskformer', 'per_pixel_baseline', 'per_pixel_baseline_plus')
BACKBONES = ('resnet', 'resnet_deep_stem', 'swin', 'caffe2')

_HEAD = 'sem_seg_head.'
_WB = r'(weight|bias)'
_MHA = r'(in_proj_weight|in_proj_bias|out_proj\.weight|out_proj\.bias)'
#: Source keys with no counterpart on purpose: the criterion's class weights and
#: the normalisation constants (our data preprocessor holds them).
_DROP = [r'criterion\..*', r'pixel_(mean|std)']

# -------------------------------------------------------- head parameter lists
_FPN = [
    rf'pixel_decoder\.(adapter|layer)_\d+(\.norm)?\.{_WB}',
    rf'pixel_decoder\.mask_features\.{_WB}',
]
# TransformerEncoderPixelDecoder (MaskFormer "+ 6 Enc"): DETR encoder layers on res5.
_TRANSFORMER_ENCODER = [
    rf'pixel_decoder\.input_proj\.{_WB}',
    rf'pixel_decoder\.transformer\.encoder\.layers\.\d+\.self_attn\.{_MHA}',
    rf'pixel_decoder\.transformer\.encoder\.layers\.\d+\.(linear1|linear2|norm1|norm2)\.{_WB}',
    rf'pixel_decoder\.transformer\.encoder\.norm\.{_WB}',
]
# MSDeformAttnPixelDecoder (Mask2Former): input_proj.{l}.0/.1 are conv and GroupNorm.
_MSDEFORMATTN = [
    rf'pixel_decoder\.input_proj\.\d+\.[01]\.{_WB}',
    r'pixel_decoder\.transformer\.level_embed',
    rf'pixel_decoder\.transformer\.encoder\.layers\.\d+\.self_attn\.'
    rf'(sampling_offsets|attention_weights|value_proj|output_proj)\.{_WB}',
    rf'pixel_decoder\.transformer\.encoder\.layers\.\d+\.(linear1|linear2|norm1|norm2)\.{_WB}',
]
# TransformerPredictor (MaskFormer): a DETR decoder; its own encoder has 0 layers
# in every official config, so predictor.transformer.encoder.* stays unmatched.
_DETR_PREDICTOR = [
    rf'predictor\.transformer\.decoder\.layers\.\d+\.(self_attn|multihead_attn)\.{_MHA}',
    rf'predictor\.transformer\.decoder\.layers\.\d+\.(linear1|linear2|norm1|norm2|norm3)\.{_WB}',
    rf'predictor\.transformer\.decoder\.norm\.{_WB}',
    r'predictor\.query_embed\.weight',
    rf'predictor\.input_proj\.{_WB}',
    rf'predictor\.mask_embed\.layers\.\d+\.{_WB}',
]
# MultiScaleMaskedTransformerDecoder (Mask2Former).
_MASKED_ATTENTION_PREDICTOR = [
    rf'predictor\.transformer_self_attention_layers\.\d+\.self_attn\.{_MHA}',
    rf'predictor\.transformer_self_attention_layers\.\d+\.norm\.{_WB}',
    rf'predictor\.transformer_cross_attention_layers\.\d+\.multihead_attn\.{_MHA}',
    rf'predictor\.transformer_cross_attention_layers\.\d+\.norm\.{_WB}',
    rf'predictor\.transformer_ffn_layers\.\d+\.(linear1|linear2|norm)\.{_WB}',
    rf'predictor\.decoder_norm\.{_WB}',
    r'predictor\.(query_feat|query_embed|level_embed)\.weight',
    rf'predictor\.input_proj\.\d+\.{_WB}',
    rf'predictor\.class_embed\.{_WB}',
    rf'predictor\.mask_embed\.layers\.\d+\.{_WB}',
]
_HEAD_PATTERNS: Dict[str, List[str]] = {
    'mask2former': _MSDEFORMATTN + _FPN + _MASKED_ATTENTION_PREDICTOR,
    'maskformer':
    _FPN + _TRANSFORMER_ENCODER + _DETR_PREDICTOR + [rf'predictor\.class_embed\.{_WB}'],
    'per_pixel_baseline': _FPN + _TRANSFORMER_ENCODER + [rf'predictor\.{_WB}'],
    'per_pixel_baseline_plus': _FPN + _TRANSFORMER_ENCODER + _DETR_PREDICTOR,
}


def head_patterns(architecture: str) -> List[str]:
    """Regular expressions of the head parameters of an architecture.

    Args:
        architecture: One of :data:`ARCHITECTURES`.

    Returns:
        Patterns (``re.fullmatch``) of head keys without ``sem_seg_head.``,
        after :func:`upgrade_head_keys`.
    """
    if architecture not in _HEAD_PATTERNS:
        raise ValueError(f'unknown architecture {architecture!r}; expected one of '
                         f'{ARCHITECTURES}')
    return list(_HEAD_PATTERNS[architecture])


# -------------------------------------------------------------------- loading


def _as_numpy(value: Any) -> np.ndarray:
    """A numpy array from an array, tensor or scalar."""
    if isinstance(value, Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def load_detectron2_checkpoint(path: str) -> Dict[str, np.ndarray]:
    """Loads the weights of a Detectron2 checkpoint without unrestricted unpickling.

    ``.pkl`` files are read by the restricted unpickler
    :func:`~mmseg_maskformer.engine.checkpoint.load_pickle_safe` (numpy arrays
    only); torch zip files by ``torch.load(weights_only=True)``.

    Args:
        path: A Detectron2 checkpoint: ``{'model': {...}, '__author__': ...,
            'matching_heuristics': ...}``, a ``{'state_dict': {...}}`` wrapper or
            a bare ``{name: array}`` dict.

    Returns:
        Parameter name -> numpy array.

    Raises:
        UnsafeCheckpointError: If the file holds anything but plain weights.
        ValueError: If the file holds no dict of weights.
    """
    if zipfile.is_zipfile(path):
        checkpoint = load_checkpoint_safe(path)
    else:
        checkpoint = load_pickle_safe(path)
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f'{path} holds a {type(checkpoint).__name__}, not a dict of weights')
    checkpoint = unwrap_state_dict(checkpoint, ('model', 'state_dict'))
    weights = OrderedDict((key, value) for key, value in checkpoint.items()
                          if isinstance(value, (np.ndarray, np.generic, Tensor)))
    if not weights or len(weights) != len(checkpoint):
        others = [key for key in checkpoint if key not in weights][:5]
        raise ValueError(f'{path} holds no dict of weights under "model", "state_dict" or at the '
                         f'top level (entries that are not arrays: {others})')
    return OrderedDict((key, _as_numpy(value)) for key, value in weights.items())


# ------------------------------------------------------------------ detection


def detect_architecture(keys: Iterable[str]) -> str:
    """Tells the architecture of a checkpoint from its head keys.

    Args:
        keys: Source keys (with ``sem_seg_head.``), old layouts included.

    Returns:
        One of :data:`ARCHITECTURES`.

    Raises:
        ValueError: If the keys fit none.
    """
    head = [key[len(_HEAD):] for key in keys if key.startswith(_HEAD)]
    if any(key.startswith(('predictor.transformer_self_attention_layers.',
                           'predictor.transformer_ffn_layers.')) for key in head):
        return 'mask2former'
    if any(key.startswith('predictor.transformer.decoder.') for key in head):
        if any(key.startswith('predictor.class_embed.') for key in head):
            return 'maskformer'
        return 'per_pixel_baseline_plus'
    if 'predictor.weight' in head:
        return 'per_pixel_baseline'
    raise ValueError('cannot tell the architecture: no sem_seg_head.predictor keys of '
                     f'{ARCHITECTURES} (found {len(head)} sem_seg_head keys); pass it explicitly')


def detect_backbone(keys: Iterable[str]) -> str:
    """Tells the backbone of a checkpoint from its keys.

    Args:
        keys: Backbone keys, with or without the ``backbone.`` prefix.

    Returns:
        ``'swin'``, ``'resnet_deep_stem'`` (Detectron2's DeepLab stem),
        ``'resnet'`` or ``'caffe2'`` (a Caffe2-named ResNet).

    Raises:
        ValueError: If the keys fit none.
    """
    names = {key[len('backbone.'):] if key.startswith('backbone.') else key for key in keys}
    if 'patch_embed.proj.weight' in names:
        return 'swin'
    if 'stem.conv2.weight' in names:
        return 'resnet_deep_stem'
    if 'stem.conv1.weight' in names:
        return 'resnet'
    if 'conv1_w' in names:
        return 'caffe2'
    raise ValueError('cannot tell the backbone (no patch_embed.proj, stem.conv1 or conv1_w '
                     f'weight); pass one of {BACKBONES} explicitly')


# ------------------------------------------------------------------ conversion


def upgrade_head_keys(state_dict: Mapping[str, Any]) -> Tuple['OrderedDict[str, Any]',
                                                              Dict[str, str]]:
    """Brings head keys of older official layouts to the current one.

    As the official heads do on load: when no key is under
    ``sem_seg_head.pixel_decoder.``, every head key outside
    ``sem_seg_head.predictor`` moves under it; ``static_query`` becomes
    ``query_feat``. Other keys are unchanged.

    Args:
        state_dict: Source key -> value.

    Returns:
        The renamed dict and ``new key -> source key`` for the keys renamed.
    """
    old_layout = not any(key.startswith(_HEAD + 'pixel_decoder.') for key in state_dict)
    upgraded: 'OrderedDict[str, Any]' = OrderedDict()
    sources: Dict[str, str] = {}
    for key, value in state_dict.items():
        new_key = key
        if old_layout and key.startswith(_HEAD) and not key.startswith(_HEAD + 'predictor'):
            new_key = _HEAD + 'pixel_decoder.' + key[len(_HEAD):]
        new_key = new_key.replace('static_query', 'query_feat')
        if new_key != key:
            sources[new_key] = key
        upgraded[new_key] = value
    return upgraded, sources


_BACKBONE_CONVERTERS: Dict[str, Callable[[Mapping[str, Any]], ConversionResult]] = {
    'resnet': detectron2_resnet_to_mmseg,
    'resnet_deep_stem': lambda weights: detectron2_resnet_to_mmseg(weights, deep_stem=True),
    'swin': swin_official_to_mmseg,
    'caffe2': caffe2_resnet_to_mmseg,
}


def convert_detectron2_backbone(state_dict: Mapping[str, Any],
                                backbone: Optional[str] = None) -> ConversionResult:
    """Converts a Detectron2 backbone (an ImageNet ``.pkl`` of the model zoo).

    Handles ``R-50.pkl`` (torchvision weights in Detectron2 names),
    ``R-103.pkl`` (DeepLab stem, for ``ResNetV1c(stem_channels=128)``), the
    MSRA ``R-50.pkl`` / ``R-101.pkl`` and FAIR ``X-101-32x8d.pkl`` in Caffe2
    naming (see :func:`~.backbones.caffe2_resnet_to_detectron2` for their
    frozen affine norms) and Swin files converted for Detectron2. A
    ``backbone.`` prefix in the source is removed.

    Args:
        state_dict: Source key -> array.
        backbone: One of :data:`BACKBONES`; detected from the keys if None.

    Returns:
        mmseg backbone keys WITHOUT the ``backbone.`` prefix: the file loads with
        ``backbone.init_cfg=dict(type='Pretrained', checkpoint=FILE)``.
    """
    weights = OrderedDict((key[len('backbone.'):] if key.startswith('backbone.') else key, value)
                          for key, value in state_dict.items())
    backbone = backbone or detect_backbone(weights)
    if backbone not in _BACKBONE_CONVERTERS:
        raise ValueError(f'unknown backbone {backbone!r}; expected one of {BACKBONES}')
    return _BACKBONE_CONVERTERS[backbone](weights)


def _convert_head(head: Mapping[str, Any], architecture: str) -> ConversionResult:
    """Head keys (without ``sem_seg_head.``) -> ``decode_head.`` keys."""
    rules = [(f'({pattern})', r'decode_head.\1') for pattern in head_patterns(architecture)]
    return apply_rules(head, rules)


def convert_detectron2(state_dict: Mapping[str, Any], *, architecture: Optional[str] = None,
                       backbone: Optional[str] = None) -> ConversionResult:
    """Converts an official MaskFormer / Mask2Former checkpoint to our model's keys.

    Args:
        state_dict: The checkpoint's ``model`` dict (source key -> array).
        architecture: One of :data:`ARCHITECTURES`; detected if None.
        backbone: ``'resnet'``, ``'resnet_deep_stem'`` or ``'swin'``; detected
            if None.

    Returns:
        ``backbone.*`` and ``decode_head.*`` tensors. ``unmatched`` and
        ``dropped`` name the source keys as they are in the file.
    """
    upgraded, sources = upgrade_head_keys(state_dict)
    architecture = architecture or detect_architecture(upgraded)
    backbone_weights = strip_prefix(upgraded, 'backbone.')
    head_weights = strip_prefix(upgraded, _HEAD)
    others = OrderedDict((key, value) for key, value in upgraded.items()
                         if not key.startswith(('backbone.', _HEAD)))

    result = apply_rules(others, [], drop=_DROP)
    if backbone_weights:
        part = convert_detectron2_backbone(backbone_weights, backbone)
        result.state_dict.update(
            ('backbone.' + key, value) for key, value in part.state_dict.items())
        result.unmatched += ['backbone.' + key for key in part.unmatched]
        result.dropped += ['backbone.' + key for key in part.dropped]
    head_result = _convert_head(head_weights, architecture)
    result.state_dict.update(head_result.state_dict)
    result.unmatched += [sources.get(_HEAD + key, _HEAD + key) for key in head_result.unmatched]
    return result
