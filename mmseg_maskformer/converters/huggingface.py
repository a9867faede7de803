"""Hugging Face ``transformers`` MaskFormer / Mask2Former checkpoints -> our keys.

Supported models (``architectures`` of the Hugging Face ``config.json``):

* ``Mask2FormerForUniversalSegmentation`` with a Swin or ResNet backbone;
* ``MaskFormerForInstanceSegmentation`` with a (MaskFormer-)Swin or ResNet
  backbone.

:func:`convert_huggingface` is a pure function ``(state dict, config dict) ->``
:class:`~.common.ConversionResult`. It accepts both key layouts of
``transformers``: the one files on the Hub are written in (``attention.self.query``,
``intermediate.dense``, ``out_proj``, ``layers.{i}.fc1``) and the in-memory one of
``transformers`` 5 (``attention.q_proj``, ``mlp.fc1``, ``o_proj``,
``layers.{i}.mlp.fc1``); the latter is first renamed into the former.

The backbone goes through the official layouts: Swin keys are rewritten into
the official Swin release's names (``patch_embed.proj``, ``layers.{s}.blocks.{b}.
attn.qkv`` with the separate query/key/value concatenated, Detectron2's output
norms ``norm{i}``) and handed to :func:`~.backbones.swin_official_to_mmseg`;
ResNet keys are rewritten into torchvision's names and handed to
:func:`~.backbones.torchvision_resnet_to_mmseg`. Head keys map one-to-one onto
ours, except the separate ``q_proj``/``k_proj``/``v_proj`` of the decoders'
attention, concatenated (in that order) into ``in_proj_weight``/``in_proj_bias``.
"""
import re
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Tuple

import torch

from .backbones import swin_official_to_mmseg, torchvision_resnet_to_mmseg
from .common import ConversionResult, Rule, apply_rules, to_tensor

__all__ = ['convert_huggingface', 'hf_architecture', 'hf_backbone_type', 'to_hub_layout']

#: Prefix of the backbone keys in both Hugging Face models.
BACKBONE_PREFIX = 'model.pixel_level_module.encoder.'
_PIXEL = 'model.pixel_level_module.decoder.'
_TRANSFORMER = 'model.transformer_module.'
_HEAD = 'decode_head.'
_W = r'(weight|bias)'
_NORM = r'(weight|bias|running_mean|running_var|num_batches_tracked)'

#: In-memory names of ``transformers`` 5 -> the names written in Hub files,
#: applied with ``re.sub`` in this order (the DETR renames first, so that the
#: Swin ``mlp.fc1`` rule only sees Swin blocks).
_TO_HUB_LAYOUT: List[Rule] = [
    (r'(\.decoder\.layers\.\d+)\.mlp\.(fc[12])\.', r'\1.\2.'),
    (r'\.(self_attn|encoder_attn)\.o_proj\.', r'.\1.out_proj.'),
    (r'(\.blocks\.\d+\.attention)\.q_proj\.', r'\1.self.query.'),
    (r'(\.blocks\.\d+\.attention)\.k_proj\.', r'\1.self.key.'),
    (r'(\.blocks\.\d+\.attention)\.v_proj\.', r'\1.self.value.'),
    (r'(\.blocks\.\d+\.attention)\.o_proj\.', r'\1.output.dense.'),
    (r'(\.blocks\.\d+\.attention)\.relative_position_bias\.', r'\1.self.'),
    (r'(\.blocks\.\d+)\.mlp\.fc1\.', r'\1.intermediate.dense.'),
    (r'(\.blocks\.\d+)\.mlp\.fc2\.', r'\1.output.dense.'),
]


def to_hub_layout(state_dict: Mapping[str, Any]) -> 'OrderedDict[str, Any]':
    """Renames in-memory ``transformers`` 5 keys into the Hub file layout.

    Keys already in the Hub layout are left unchanged.
    """
    compiled = [(re.compile(p), r) for p, r in _TO_HUB_LAYOUT]
    out: 'OrderedDict[str, Any]' = OrderedDict()
    for key, value in state_dict.items():
        for pattern, repl in compiled:
            key = pattern.sub(repl, key)
        out[key] = value
    return out


def _fuse(state_dict: Mapping[str, Any], parts: Tuple[str, str, str],
          fused: Tuple[str, str]) -> 'OrderedDict[str, Any]':
    """Concatenates separate query/key/value projections (in that order).

    Args:
        state_dict: Source keys.
        parts: Module names of the query, key and value projections, e.g.
            ``('q_proj', 'k_proj', 'v_proj')``; a key ``<m>.<part>.weight``
            is fused with its two siblings.
        fused: Names of the fused weight and bias, relative to ``<m>``, e.g.
            ``('in_proj_weight', 'in_proj_bias')``.

    Returns:
        The state dict with every complete triple replaced by one (3C, C)
        weight and one (3C,) bias; incomplete triples are left as they are
        (and end up unmatched).
    """
    pattern = re.compile(rf'(.*)\.{re.escape(parts[0])}\.(weight|bias)')
    out: 'OrderedDict[str, Any]' = OrderedDict()
    consumed = set()
    for key in state_dict:
        match = pattern.fullmatch(key)
        if match is None:
            continue
        prefix, kind = match.groups()
        names = [f'{prefix}.{part}.{kind}' for part in parts]
        if all(name in state_dict for name in names):
            target = f'{prefix}.{fused[0] if kind == "weight" else fused[1]}'
            out[target] = torch.cat([to_tensor(state_dict[n]) for n in names], 0)
            consumed.update(names)
    for key, value in state_dict.items():
        if key not in consumed:
            out[key] = value
    return out


def hf_architecture(hf_config: Mapping[str, Any]) -> str:
    """``'mask2former'`` or ``'maskformer'`` from a Hugging Face config dict."""
    model_type = hf_config.get('model_type')
    architectures = hf_config.get('architectures') or []
    if model_type == 'mask2former' or any('Mask2Former' in a for a in architectures):
        return 'mask2former'
    if model_type == 'maskformer' or any('MaskFormer' in a for a in architectures):
        return 'maskformer'
    raise ValueError(f'not a MaskFormer / Mask2Former config: model_type={model_type!r}, '
                     f'architectures={architectures!r}')


def hf_backbone_type(hf_config: Mapping[str, Any]) -> str:
    """``'swin'`` or ``'resnet'``: the backbone family of a Hugging Face config."""
    backbone = hf_config.get('backbone_config') or {}
    model_type = backbone.get('model_type', 'swin')
    if model_type in ('swin', 'maskformer-swin'):
        return 'swin'
    if model_type == 'resnet':
        return 'resnet'
    raise ValueError(f'unsupported Hugging Face backbone {model_type!r}: only Swin and ResNet '
                     'backbones are converted')


# ----------------------------------------------------------------------------- backbones


def _swin_rules(num_stages: int) -> List[Rule]:
    """Hugging Face (MaskFormer-)Swin (Hub layout, fused qkv) -> official Swin."""
    block = r'encoder\.layers\.(\d+)\.blocks\.(\d+)\.'
    rules: List[Rule] = [
        (rf'embeddings\.patch_embeddings\.projection\.{_W}', r'patch_embed.proj.\1'),
        (rf'embeddings\.norm\.{_W}', r'patch_embed.norm.\1'),
        (rf'{block}layernorm_before\.{_W}', r'layers.\1.blocks.\2.norm1.\3'),
        (rf'{block}layernorm_after\.{_W}', r'layers.\1.blocks.\2.norm2.\3'),
        (rf'{block}attention\.self\.qkv\.{_W}', r'layers.\1.blocks.\2.attn.qkv.\3'),
        (rf'{block}attention\.self\.relative_position_bias_table',
         r'layers.\1.blocks.\2.attn.relative_position_bias_table'),
        (rf'{block}attention\.output\.dense\.{_W}', r'layers.\1.blocks.\2.attn.proj.\3'),
        (rf'{block}intermediate\.dense\.{_W}', r'layers.\1.blocks.\2.mlp.fc1.\3'),
        (rf'{block}output\.dense\.{_W}', r'layers.\1.blocks.\2.mlp.fc2.\3'),
        (rf'encoder\.layers\.(\d+)\.downsample\.(reduction|norm)\.{_W}',
         r'layers.\1.downsample.\2.\3'),
    ]
    # output norms: Swin ``stage{i+1}``, MaskFormer-Swin ``{i}`` -> Detectron2 ``norm{i}``
    for i in range(num_stages):
        rules.append((rf'hidden_states_norms\.(?:stage{i + 1}|{i})\.{_W}', rf'norm{i}.\1'))
    return rules


def _hf_swin_to_official(state_dict: Mapping[str, Any],
                         num_stages: int) -> ConversionResult:
    """Backbone keys (prefix removed) of a Hugging Face Swin -> official Swin keys.

    The unused final ``layernorm`` and the ``relative_position_index`` buffers
    are dropped.
    """
    stripped = OrderedDict((re.sub(r'^(swin|model)\.', '', k), v) for k, v in state_dict.items())
    fused = _fuse(stripped, ('query', 'key', 'value'), ('qkv.weight', 'qkv.bias'))
    return apply_rules(fused, _swin_rules(num_stages),
                       drop=(r'layernorm\.(weight|bias)', r'.*relative_position_index'))


def _resnet_rules(num_stages: int) -> List[Rule]:
    """Hugging Face ResNet -> torchvision ResNet (``conv1``/``bn1``, ``layer{s}``)."""
    rules: List[Rule] = [
        (r'embedder\.embedder\.convolution\.weight', 'conv1.weight'),
        (rf'embedder\.embedder\.normalization\.{_NORM}', r'bn1.\1'),
    ]
    for s in range(num_stages):
        unit = rf'encoder\.stages\.{s}\.layers\.(\d+)\.'
        rules += [
            (rf'{unit}shortcut\.convolution\.weight', rf'layer{s + 1}.\1.downsample.0.weight'),
            (rf'{unit}shortcut\.normalization\.{_NORM}', rf'layer{s + 1}.\1.downsample.1.\2'),
        ]
        for k in range(3):
            rules += [
                (rf'{unit}layer\.{k}\.convolution\.weight', rf'layer{s + 1}.\1.conv{k + 1}.weight'),
                (rf'{unit}layer\.{k}\.normalization\.{_NORM}', rf'layer{s + 1}.\1.bn{k + 1}.\2'),
            ]
    return rules


def _hf_resnet_to_torchvision(state_dict: Mapping[str, Any],
                              num_stages: int) -> ConversionResult:
    """Backbone keys (prefix removed) of a Hugging Face ResNet -> torchvision keys."""
    stripped = OrderedDict((re.sub(r'^model\.', '', k), v) for k, v in state_dict.items())
    return apply_rules(stripped, _resnet_rules(num_stages))


def _convert_backbone(state_dict: Mapping[str, Any], backbone_type: str,
                      num_stages: int) -> ConversionResult:
    """Backbone keys (prefix removed) -> our ``backbone.`` keys, via the official layouts."""
    if backbone_type == 'swin':
        official = _hf_swin_to_official(state_dict, num_stages)
        converted = swin_official_to_mmseg(official.state_dict)
    else:
        official = _hf_resnet_to_torchvision(state_dict, num_stages)
        converted = torchvision_resnet_to_mmseg(official.state_dict)
    # first-stage reports name Hugging Face keys, second-stage ones official keys
    result = ConversionResult(unmatched=[BACKBONE_PREFIX + k for k in official.unmatched],
                              dropped=[BACKBONE_PREFIX + k for k in official.dropped])
    result.merge(converted, prefix='backbone.')
    return result


# ----------------------------------------------------------------------------- heads


def _mask2former_rules() -> List[Rule]:
    """Mask2Former head (Hub layout, fused self-attention) -> our keys."""
    pd, pr = _HEAD + 'pixel_decoder.', _HEAD + 'predictor.'
    enc = rf'{_PIXEL}encoder\.layers\.(\d+)\.'
    dec = rf'{_TRANSFORMER}decoder\.layers\.(\d+)\.'
    sa, ca, ffn = (pr + 'transformer_self_attention_layers.',
                   pr + 'transformer_cross_attention_layers.', pr + 'transformer_ffn_layers.')
    return [
        (rf'{_PIXEL}input_projections\.(\d+)\.([01])\.{_W}', pd + r'input_proj.\1.\2.\3'),
        (rf'{_PIXEL}level_embed', pd + 'transformer.level_embed'),
        (rf'{enc}self_attn\.(sampling_offsets|attention_weights|value_proj|output_proj)\.{_W}',
         pd + r'transformer.encoder.layers.\1.self_attn.\2.\3'),
        (rf'{enc}self_attn_layer_norm\.{_W}', pd + r'transformer.encoder.layers.\1.norm1.\2'),
        (rf'{enc}fc1\.{_W}', pd + r'transformer.encoder.layers.\1.linear1.\2'),
        (rf'{enc}fc2\.{_W}', pd + r'transformer.encoder.layers.\1.linear2.\2'),
        (rf'{enc}final_layer_norm\.{_W}', pd + r'transformer.encoder.layers.\1.norm2.\2'),
        (rf'{_PIXEL}mask_projection\.{_W}', pd + r'mask_features.\1'),
        (rf'{_PIXEL}(adapter|layer)_(\d+)\.0\.weight', pd + r'\1_\2.weight'),
        (rf'{_PIXEL}(adapter|layer)_(\d+)\.1\.{_W}', pd + r'\1_\2.norm.\3'),
        (rf'{_TRANSFORMER}queries_embedder\.weight', pr + 'query_embed.weight'),
        (rf'{_TRANSFORMER}queries_features\.weight', pr + 'query_feat.weight'),
        (rf'{_TRANSFORMER}level_embed\.weight', pr + 'level_embed.weight'),
        (rf'{_TRANSFORMER}input_projections\.(\d+)\.{_W}', pr + r'input_proj.\1.\2'),
        (rf'{dec}self_attn\.(in_proj_weight|in_proj_bias)', sa + r'\1.self_attn.\2'),
        (rf'{dec}self_attn\.out_proj\.{_W}', sa + r'\1.self_attn.out_proj.\2'),
        (rf'{dec}self_attn_layer_norm\.{_W}', sa + r'\1.norm.\2'),
        (rf'{dec}cross_attn\.(in_proj_weight|in_proj_bias)', ca + r'\1.multihead_attn.\2'),
        (rf'{dec}cross_attn\.out_proj\.{_W}', ca + r'\1.multihead_attn.out_proj.\2'),
        (rf'{dec}cross_attn_layer_norm\.{_W}', ca + r'\1.norm.\2'),
        (rf'{dec}fc1\.{_W}', ffn + r'\1.linear1.\2'),
        (rf'{dec}fc2\.{_W}', ffn + r'\1.linear2.\2'),
        (rf'{dec}final_layer_norm\.{_W}', ffn + r'\1.norm.\2'),
        (rf'{_TRANSFORMER}decoder\.layernorm\.{_W}', pr + r'decoder_norm.\1'),
        (rf'{_TRANSFORMER}decoder\.mask_predictor\.mask_embedder\.(\d+)\.0\.{_W}',
         pr + r'mask_embed.layers.\1.\2'),
        (rf'class_predictor\.{_W}', pr + r'class_embed.\1'),
    ]


def _maskformer_rules(num_levels: int) -> List[Rule]:
    """MaskFormer head (Hub layout, fused attention) -> our keys.

    Hugging Face numbers the FPN from the coarse end (``fpn.stem`` is the
    coarsest level, ``fpn.layers.0`` the next one); ours from the fine end
    (``adapter_1``/``layer_1`` are res2, ``layer_{num_levels}`` the coarsest).
    """
    pd, pr = _HEAD + 'pixel_decoder.', _HEAD + 'predictor.'
    dec = rf'{_TRANSFORMER}decoder\.layers\.(\d+)\.'
    ours = pr + r'transformer.decoder.layers.\1.'
    rules: List[Rule] = [
        (rf'{_PIXEL}fpn\.stem\.0\.weight', pd + f'layer_{num_levels}.weight'),
        (rf'{_PIXEL}fpn\.stem\.1\.{_W}', pd + f'layer_{num_levels}.norm.' + r'\1'),
    ]
    for j in range(num_levels - 1):
        level = num_levels - 1 - j
        for part, name in (('proj', 'adapter'), ('block', 'layer')):
            rules += [
                (rf'{_PIXEL}fpn\.layers\.{j}\.{part}\.0\.weight', pd + f'{name}_{level}.weight'),
                (rf'{_PIXEL}fpn\.layers\.{j}\.{part}\.1\.{_W}',
                 pd + f'{name}_{level}.norm.' + r'\1'),
            ]
    return rules + [
        (rf'{_PIXEL}mask_projection\.{_W}', pd + r'mask_features.\1'),
        (rf'{_TRANSFORMER}queries_embedder\.weight', pr + 'query_embed.weight'),
        (rf'{_TRANSFORMER}input_projection\.{_W}', pr + r'input_proj.\1'),
        (rf'{dec}self_attn\.(in_proj_weight|in_proj_bias)', ours + r'self_attn.\2'),
        (rf'{dec}self_attn\.out_proj\.{_W}', ours + r'self_attn.out_proj.\2'),
        (rf'{dec}self_attn_layer_norm\.{_W}', ours + r'norm1.\2'),
        (rf'{dec}encoder_attn\.(in_proj_weight|in_proj_bias)', ours + r'multihead_attn.\2'),
        (rf'{dec}encoder_attn\.out_proj\.{_W}', ours + r'multihead_attn.out_proj.\2'),
        (rf'{dec}encoder_attn_layer_norm\.{_W}', ours + r'norm2.\2'),
        (rf'{dec}fc1\.{_W}', ours + r'linear1.\2'),
        (rf'{dec}fc2\.{_W}', ours + r'linear2.\2'),
        (rf'{dec}final_layer_norm\.{_W}', ours + r'norm3.\2'),
        (rf'{_TRANSFORMER}decoder\.layernorm\.{_W}', pr + r'transformer.decoder.norm.\1'),
        (rf'class_predictor\.{_W}', pr + r'class_embed.\1'),
        (rf'mask_embedder\.(\d+)\.0\.{_W}', pr + r'mask_embed.layers.\1.\2'),
    ]


def _num_stages(hf_config: Mapping[str, Any]) -> int:
    """Number of backbone stages (4 for every released model)."""
    backbone = hf_config.get('backbone_config') or {}
    return len(backbone.get('depths') or [2, 2, 6, 2])


def convert_huggingface(state_dict: Mapping[str, Any],
                        hf_config: Mapping[str, Any]) -> ConversionResult:
    """Converts a Hugging Face MaskFormer / Mask2Former state dict into ours.

    Args:
        state_dict: The model's tensors (``model.safetensors``,
            ``pytorch_model.bin`` or ``model.state_dict()``), in the Hub or the
            in-memory ``transformers`` 5 layout.
        hf_config: The model's ``config.json`` as a dict (``config.to_dict()``).

    Returns:
        Our keys (``backbone.``, ``decode_head.``); ``dropped``: the loss's
        ``criterion.empty_weight``, Swin's unused final ``layernorm`` and its
        ``relative_position_index`` buffers; ``unmatched``: anything else no
        rule converted (another architecture, or a converter bug).
    """
    architecture = hf_architecture(hf_config)
    backbone_type = hf_backbone_type(hf_config)
    num_stages = _num_stages(hf_config)
    hub = to_hub_layout(state_dict)
    backbone = OrderedDict((k[len(BACKBONE_PREFIX):], v) for k, v in hub.items()
                           if k.startswith(BACKBONE_PREFIX))
    head = OrderedDict((k, v) for k, v in hub.items() if not k.startswith(BACKBONE_PREFIX))
    head = _fuse(head, ('q_proj', 'k_proj', 'v_proj'), ('in_proj_weight', 'in_proj_bias'))
    rules = _mask2former_rules() if architecture == 'mask2former' else _maskformer_rules(
        num_stages)
    result = _convert_backbone(backbone, backbone_type, num_stages)
    result.merge(apply_rules(head, rules, drop=(r'criterion\.empty_weight', )))
    return result
