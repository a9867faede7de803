"""mmdetection / mmsegmentation Mask2Former checkpoints -> this toolbox.

The model zoos of mmdetection 3.x (``Mask2Former`` detector, head under
``panoptic_head.``, for COCO panoptic and instance) and mmsegmentation 1.x
(``EncoderDecoder``, head under ``decode_head.``) hold the same network as our
``MaskFormerSegmentor`` with a ``Mask2FormerDecodeHead`` and a
``MultiScaleDeformablePixelDecoder``, under mmdet's ``Mask2FormerHead``
parameter names. The name correspondence itself lives in
:mod:`mmseg_maskformer.converters.mmdet` (both directions); this module adds
what real zoo files need on top of it:

* the mmdetection 2.x layout of the transformer layers (mmcv's
  ``BaseTransformerLayer``: ``attentions.{0,1}`` and ``ffns.0``), which some
  released files may still use, is upgraded to the 3.x names first;
* the head prefix (``panoptic_head`` or ``decode_head``) is detected;
* backbone keys pass through unchanged: mmdet's and mmseg's ``ResNet`` and
  ``SwinTransformer`` share their parameter names, and both Swins keep the
  patch-merging weights in the ``nn.Unfold`` order, so nothing is reordered.

Level order needs no care either: mmdet's ``input_convs.{i}`` and
``level_encoding.weight[i]`` index the transformer levels from the coarsest
(res5) down, as Detectron2's ``input_proj.{i}`` and ``level_embed[i]`` do.
Class order: mmdet puts the things first, then the stuff; COCO panoptic's
categories sorted by id do the same, which is our order.
"""
import re
from collections import OrderedDict
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from .common import ConversionResult, unwrap_state_dict
from .mmdet import mmdet_to_ours_mask2former

#: Head prefix in the checkpoint -> the peer that writes it.
HEAD_PREFIXES: Dict[str, str] = {'panoptic_head': 'mmdet', 'decode_head': 'mmseg'}

#: The marker of a Mask2Former head: mmdet's pixel decoder input convolutions.
_HEAD_MARKER = '.pixel_decoder.input_convs.'

#: mmdetection 2.x names (mmcv ``BaseTransformerLayer``) -> 3.x names. In the
#: pixel decoder the only attention is the deformable self-attention; in the
#: transformer decoder the layer order is ``('cross_attn', 'norm', 'self_attn',
#: 'norm', 'ffn', 'norm')``, so ``attentions.0`` is the cross-attention and
#: ``attentions.1`` the self-attention. Norm indices are the same in both.
_LEGACY_RULES: Tuple[Tuple[str, str], ...] = (
    (r'(\w+\.pixel_decoder\.encoder\.layers\.\d+)\.attentions\.0\.(.+)', r'\1.self_attn.\2'),
    (r'(\w+\.pixel_decoder\.encoder\.layers\.\d+)\.ffns\.0\.(.+)', r'\1.ffn.\2'),
    (r'(\w+\.transformer_decoder\.layers\.\d+)\.attentions\.0\.(.+)', r'\1.cross_attn.\2'),
    (r'(\w+\.transformer_decoder\.layers\.\d+)\.attentions\.1\.(.+)', r'\1.self_attn.\2'),
    (r'(\w+\.transformer_decoder\.layers\.\d+)\.ffns\.0\.(.+)', r'\1.ffn.\2'),
)


def detect_head_prefix(keys: Iterable[str]) -> str:
    """The prefix under which a checkpoint holds its Mask2Former head.

    Args:
        keys: State-dict keys of an mmdet or mmseg checkpoint.

    Returns:
        ``'panoptic_head'`` (mmdet detector) or ``'decode_head'`` (mmseg).

    Raises:
        ValueError: If no key looks like an mmdet-style Mask2Former head
            (e.g. a checkpoint of this toolbox, or of another architecture).
    """
    keys = list(keys)
    for prefix in HEAD_PREFIXES:
        if any(key.startswith(prefix + _HEAD_MARKER) for key in keys):
            return prefix
    raise ValueError('no mmdet-style Mask2Former head found: expected keys like '
                     f'"panoptic_head{_HEAD_MARKER}0.conv.weight" (mmdet) or '
                     f'"decode_head{_HEAD_MARKER}0.conv.weight" (mmseg)')


def is_legacy_layout(keys: Iterable[str]) -> bool:
    """Whether the transformer layers use mmdetection 2.x names."""
    pattern = re.compile(r'.*\.layers\.\d+\.(attentions|ffns)\.\d+\..*')
    return any(pattern.fullmatch(key) for key in keys)


def upgrade_legacy_keys(state_dict: Mapping[str, Any]) -> 'OrderedDict[str, Any]':
    """Renames mmdetection 2.x transformer-layer keys to the 3.x names.

    Keys outside the pixel-decoder encoder and the transformer decoder, and
    keys already in the 3.x layout, are kept as they are.
    """
    compiled = [(re.compile(pattern), repl) for pattern, repl in _LEGACY_RULES]
    upgraded: 'OrderedDict[str, Any]' = OrderedDict()
    for key, value in state_dict.items():
        for pattern, repl in compiled:
            if pattern.fullmatch(key):
                key = pattern.sub(repl, key)
                break
        upgraded[key] = value
    return upgraded


def strip_prefix(state_dict: Mapping[str, Any], prefix: str = 'module.') -> Dict[str, Any]:
    """Removes ``prefix`` from every key that has it (data-parallel wrappers)."""
    return OrderedDict((key[len(prefix):] if key.startswith(prefix) else key, value)
                       for key, value in state_dict.items())


def convert_mmdet_mask2former(state_dict: Mapping[str, Any],
                              head_prefix: Optional[str] = None) -> ConversionResult:
    """Converts an mmdet / mmseg Mask2Former state dict to our key names.

    Args:
        state_dict: The ``state_dict`` of a zoo checkpoint: ``backbone.*`` and
            ``panoptic_head.*`` (mmdet) or ``decode_head.*`` (mmseg), in the
            mmdetection 3.x or 2.x layout.
        head_prefix: ``'panoptic_head'`` or ``'decode_head'``; detected from
            the keys when ``None``.

    Returns:
        Our ``backbone.*`` / ``decode_head.pixel_decoder.*`` /
        ``decode_head.predictor.*`` tensors. Keys of anything else (another
        head, a neck, an auxiliary head) are reported as ``unmatched``.

    Raises:
        ValueError: For an unknown ``head_prefix``, or none detectable.
    """
    state_dict = strip_prefix(state_dict)
    prefix = head_prefix or detect_head_prefix(state_dict)
    if prefix not in HEAD_PREFIXES:
        raise ValueError(f'head_prefix must be one of {sorted(HEAD_PREFIXES)}, got {prefix!r}')
    if is_legacy_layout(state_dict):
        state_dict = upgrade_legacy_keys(state_dict)
    return mmdet_to_ours_mask2former(state_dict, peer=HEAD_PREFIXES[prefix])


def checkpoint_state_dict(checkpoint: Mapping[str, Any]) -> Mapping[str, Any]:
    """The weights inside a loaded OpenMMLab checkpoint (``state_dict`` key) or the
    checkpoint itself when it is a bare state dict."""
    return unwrap_state_dict(checkpoint, ('state_dict', ))


__all__: List[str] = ['HEAD_PREFIXES', 'checkpoint_state_dict', 'convert_mmdet_mask2former',
                      'detect_head_prefix', 'is_legacy_layout', 'upgrade_legacy_keys',
                      'strip_prefix']
