"""ImageNet backbone weights into mmseg backbone key names.

Four source layouts, each a pure function ``state dict -> ConversionResult``
whose keys have no ``backbone.`` prefix (what ``init_cfg=dict(type='Pretrained',
checkpoint=...)`` of an mmseg backbone reads):

* torchvision ResNet / ResNeXt (:func:`torchvision_resnet_to_mmseg`): the names
  are already mmseg's, only the classifier ``fc`` is dropped;
* the official Swin release and Detectron2's copy of it
  (:func:`swin_official_to_mmseg`), including the channel order of the
  patch-merging layers (:func:`patch_merging_to_mmseg`);
* Detectron2 ResNets (:func:`detectron2_resnet_to_mmseg`): ``stem.conv1`` or
  the three-conv DeepLab stem, ``res{2..5}`` stages, ``.norm`` for each conv;
* Caffe2 (MSRA / FAIR) ResNets in Detectron2's model zoo
  (:func:`caffe2_resnet_to_mmseg`): ``res2_0_branch2a_w`` names with a frozen
  affine ``_bn_s`` / ``_bn_b`` instead of batch-norm statistics.
"""
import re
from collections import OrderedDict
from typing import Any, Dict, List, Mapping

import torch
from torch import Tensor

from .common import ConversionResult, Rule, apply_rules

__all__ = [
    'torchvision_resnet_to_mmseg', 'swin_official_to_mmseg', 'patch_merging_to_mmseg',
    'patch_merging_from_mmseg', 'detectron2_resnet_to_mmseg', 'caffe2_resnet_to_detectron2',
    'caffe2_resnet_to_mmseg', 'strip_prefix'
]

_BN = r'(weight|bias|running_mean|running_var|num_batches_tracked)'
_WB = r'(weight|bias)'

# Position of each 2x2 neighbour in the official PatchMerging concatenation
# [x(0,0), x(1,0), x(0,1), x(1,1)] ((row, col) offsets), listed in the order of
# nn.Unfold (row-major: (0,0), (0,1), (1,0), (1,1)). The permutation is its own
# inverse.
_UNFOLD_FROM_OFFICIAL = (0, 2, 1, 3)

# ----------------------------------------------------------------- torchvision

_TORCHVISION_RESNET_RULES: List[Rule] = [
    (r'conv1\.weight', r'conv1.weight'),
    (rf'bn1\.{_BN}', r'bn1.\1'),
    (rf'layer([1-4])\.(\d+)\.conv([123])\.weight', r'layer\1.\2.conv\3.weight'),
    (rf'layer([1-4])\.(\d+)\.bn([123])\.{_BN}', r'layer\1.\2.bn\3.\4'),
    (r'layer(\d)\.(\d+)\.downsample\.0\.weight', r'layer\1.\2.downsample.0.weight'),
    (rf'layer(\d)\.(\d+)\.downsample\.1\.{_BN}', r'layer\1.\2.downsample.1.\3'),
]


def torchvision_resnet_to_mmseg(state_dict: Mapping[str, Any]) -> ConversionResult:
    """Converts torchvision ResNet / ResNeXt weights to mmseg ``ResNet`` keys.

    torchvision's names (``conv1``, ``bn1``, ``layer{i}.{b}.conv{k}``,
    ``bn{k}``, ``downsample.0/1``) are mmseg's own; the classifier ``fc`` is
    dropped. ResNeXt files (``resnext101_32x8d``) fit mmseg ``ResNeXt`` with
    the same ``groups`` and ``base_width``.

    Args:
        state_dict: torchvision key -> tensor or array.

    Returns:
        mmseg ``ResNet`` keys without the ``backbone.`` prefix.
    """
    return apply_rules(state_dict, _TORCHVISION_RESNET_RULES, drop=[r'fc\.(weight|bias)'])


# ------------------------------------------------------------------------ Swin


def patch_merging_to_mmseg(weight: Tensor) -> Tensor:
    """Reorders a patch-merging weight from the official layout to mmseg's.

    The official ``PatchMerging`` concatenates the four 2x2 neighbours as
    ``[x0, x1, x2, x3]`` = offsets ``[(0,0), (1,0), (0,1), (1,1)]``, each with
    all ``C`` channels: input channel ``k * C + c``. mmseg's uses ``nn.Unfold``,
    whose channel ``c * 4 + p`` holds channel ``c`` at offset ``p`` in row-major
    order. Works on the last dimension, so on the ``reduction`` weight
    ``(2C, 4C)`` and the ``norm`` weight or bias ``(4C,)`` alike.

    Args:
        weight: Tensor whose last dimension is ``4C`` in the official order.

    Returns:
        The same values with the last dimension in mmseg's order.
    """
    *lead, four_c = weight.shape
    channels = four_c // 4
    grouped = weight.reshape(*lead, 4, channels)[..., list(_UNFOLD_FROM_OFFICIAL), :]
    return grouped.transpose(-1, -2).reshape(*lead, four_c).contiguous()


def patch_merging_from_mmseg(weight: Tensor) -> Tensor:
    """Inverse of :func:`patch_merging_to_mmseg` (mmseg order -> official)."""
    *lead, four_c = weight.shape
    channels = four_c // 4
    grouped = weight.reshape(*lead, channels, 4).transpose(-1, -2)
    return grouped[..., list(_UNFOLD_FROM_OFFICIAL), :].reshape(*lead, four_c).contiguous()


_SWIN_RULES: List[Rule] = [
    (rf'patch_embed\.proj\.{_WB}', r'patch_embed.projection.\1'),
    (rf'patch_embed\.norm\.{_WB}', r'patch_embed.norm.\1'),
    (r'absolute_pos_embed', r'absolute_pos_embed'),
    (rf'layers\.(\d+)\.blocks\.(\d+)\.(norm1|norm2)\.{_WB}', r'stages.\1.blocks.\2.\3.\4'),
    (rf'layers\.(\d+)\.blocks\.(\d+)\.attn\.(qkv|proj)\.{_WB}',
     r'stages.\1.blocks.\2.attn.w_msa.\3.\4'),
    (r'layers\.(\d+)\.blocks\.(\d+)\.attn\.relative_position_bias_table',
     r'stages.\1.blocks.\2.attn.w_msa.relative_position_bias_table'),
    (rf'layers\.(\d+)\.blocks\.(\d+)\.mlp\.fc1\.{_WB}', r'stages.\1.blocks.\2.ffn.layers.0.0.\3'),
    (rf'layers\.(\d+)\.blocks\.(\d+)\.mlp\.fc2\.{_WB}', r'stages.\1.blocks.\2.ffn.layers.1.\3'),
    (r'layers\.(\d+)\.downsample\.reduction\.weight', r'stages.\1.downsample.reduction.weight'),
    (rf'layers\.(\d+)\.downsample\.norm\.{_WB}', r'stages.\1.downsample.norm.\2'),
    (rf'norm(\d)\.{_WB}', r'norm\1.\2'),
]
# Classification head and final norm, and buffers mmseg rebuilds itself.
_SWIN_DROP = [
    rf'head\.{_WB}', rf'norm\.{_WB}', r'.*\.attn_mask', r'.*\.relative_position_index'
]
_PATCH_MERGING = re.compile(r'stages\.\d+\.downsample\.(reduction\.weight|norm\.(weight|bias))')


def swin_official_to_mmseg(state_dict: Mapping[str, Any]) -> ConversionResult:
    """Converts official Swin (or Detectron2 Swin) weights to mmseg ``SwinTransformer``.

    Renames ``patch_embed.proj`` -> ``patch_embed.projection``,
    ``layers.{s}`` -> ``stages.{s}``, ``attn`` -> ``attn.w_msa``,
    ``mlp.fc1/fc2`` -> ``ffn.layers.0.0/ffn.layers.1`` and keeps Detectron2's
    per-output norms ``norm{i}``; reorders the patch-merging ``reduction`` and
    ``norm`` channels (:func:`patch_merging_to_mmseg`). The classification
    ``head`` and final ``norm`` and the buffers ``attn_mask`` and
    ``relative_position_index`` (rebuilt by mmseg, same values) are dropped.

    Args:
        state_dict: Official key -> tensor or array.

    Returns:
        mmseg ``SwinTransformer`` keys without the ``backbone.`` prefix.
    """
    result = apply_rules(state_dict, _SWIN_RULES, drop=_SWIN_DROP)
    for key, value in result.state_dict.items():
        if _PATCH_MERGING.fullmatch(key):
            result.state_dict[key] = patch_merging_to_mmseg(value)
    return result


# ------------------------------------------------------------------ Detectron2


def _detectron2_resnet_rules(deep_stem: bool) -> List[Rule]:
    """Renaming rules of a Detectron2 ResNet (stages ``res2..res5``)."""
    if deep_stem:
        # mmseg ResNetV1c stem: Sequential(conv, bn, relu) x 3 -> indices 0/1, 3/4, 6/7.
        rules: List[Rule] = []
        for conv, index in ((1, 0), (2, 3), (3, 6)):
            rules.append((rf'stem\.conv{conv}\.weight', f'stem.{index}.weight'))
            rules.append((rf'stem\.conv{conv}\.norm\.{_BN}', rf'stem.{index + 1}.\1'))
    else:
        rules = [(r'stem\.conv1\.weight', 'conv1.weight'),
                 (rf'stem\.conv1\.norm\.{_BN}', r'bn1.\1')]
    for stage in range(2, 6):
        layer = f'layer{stage - 1}'
        rules += [
            (rf'res{stage}\.(\d+)\.conv([123])\.weight', rf'{layer}.\1.conv\2.weight'),
            (rf'res{stage}\.(\d+)\.conv([123])\.norm\.{_BN}', rf'{layer}.\1.bn\2.\3'),
            (rf'res{stage}\.(\d+)\.shortcut\.weight', rf'{layer}.\1.downsample.0.weight'),
            (rf'res{stage}\.(\d+)\.shortcut\.norm\.{_BN}', rf'{layer}.\1.downsample.1.\2'),
        ]
    return rules


def detectron2_resnet_to_mmseg(state_dict: Mapping[str, Any],
                               deep_stem: bool = False) -> ConversionResult:
    """Converts Detectron2 ResNet weights to mmseg ``ResNet`` / ``ResNetV1c`` keys.

    Detectron2 names a conv ``stem.conv1`` or ``res{s}.{b}.conv{k}`` /
    ``shortcut`` and its FrozenBN ``<conv>.norm`` (weight, bias, running_mean,
    running_var; no ``num_batches_tracked``). The DeepLab stem of ``R-103.pkl``
    (R101c) is ``stem.conv1/conv2/conv3`` (3->64 stride 2, 64->64, 64->128),
    mmseg's ``ResNetV1c(stem_channels=128)`` stem ``stem.0/1, 3/4, 6/7``.
    A classifier (``stem.fc`` in torchvision-converted files, ``fc``,
    ``linear``) is dropped.

    Args:
        state_dict: Detectron2 key (no ``backbone.`` prefix) -> tensor or array.
        deep_stem: Whether the stem is the three-conv DeepLab stem.

    Returns:
        mmseg keys without the ``backbone.`` prefix.
    """
    drop = [rf'(stem\.)?(fc|linear)\.{_WB}']
    return apply_rules(state_dict, _detectron2_resnet_rules(deep_stem), drop=drop)


# ---------------------------------------------------------------------- Caffe2

_CAFFE2_RULES: List[Rule] = [
    (r'conv1_w', 'stem.conv1.weight'),
    (r'res_conv1_bn_s', 'stem.conv1.norm.weight'),
    (r'res_conv1_bn_b', 'stem.conv1.norm.bias'),
    (r'res_conv1_bn_rm', 'stem.conv1.norm.running_mean'),
    (r'res_conv1_bn_riv', 'stem.conv1.norm.running_var'),
    (r'res(\d)_(\d+)_branch1_w', r'res\1.\2.shortcut.weight'),
    (r'res(\d)_(\d+)_branch1_bn_s', r'res\1.\2.shortcut.norm.weight'),
    (r'res(\d)_(\d+)_branch1_bn_b', r'res\1.\2.shortcut.norm.bias'),
    (r'res(\d)_(\d+)_branch1_bn_rm', r'res\1.\2.shortcut.norm.running_mean'),
    (r'res(\d)_(\d+)_branch1_bn_riv', r'res\1.\2.shortcut.norm.running_var'),
]
for _branch, _conv in (('2a', 1), ('2b', 2), ('2c', 3)):
    _CAFFE2_RULES += [
        (rf'res(\d)_(\d+)_branch{_branch}_w', rf'res\1.\2.conv{_conv}.weight'),
        (rf'res(\d)_(\d+)_branch{_branch}_bn_s', rf'res\1.\2.conv{_conv}.norm.weight'),
        (rf'res(\d)_(\d+)_branch{_branch}_bn_b', rf'res\1.\2.conv{_conv}.norm.bias'),
        (rf'res(\d)_(\d+)_branch{_branch}_bn_rm', rf'res\1.\2.conv{_conv}.norm.running_mean'),
        (rf'res(\d)_(\d+)_branch{_branch}_bn_riv', rf'res\1.\2.conv{_conv}.norm.running_var'),
    ]


def caffe2_resnet_to_detectron2(state_dict: Mapping[str, Any]) -> ConversionResult:
    """Renames Caffe2 ResNet blobs to Detectron2 names, completing the norms.

    Caffe2 (MSRA ``R-50.pkl`` / ``R-101.pkl``, FAIR ``X-101-32x8d.pkl``) names
    blobs ``conv1_w``, ``res_conv1_bn_s/_b``, ``res2_0_branch2a_w``,
    ``res2_0_branch2a_bn_s/_b``, ``res2_0_branch1_w`` (the shortcut); the
    classifier ``fc1000_w/_b`` is dropped. ``_bn_s`` / ``_bn_b`` are a frozen
    affine ``y = x * s + b`` (batch norm folded in), so each norm without
    statistics gets ``running_mean = 0`` and ``running_var = 1``, exactly as
    Detectron2's ``FrozenBatchNorm2d`` does when it loads these files: a
    batch norm with ``eps = 1e-5`` then computes ``x / sqrt(1 + 1e-5) * s + b``,
    a scale smaller by a factor ``1 - 5e-6`` than the affine, as in Detectron2.

    Args:
        state_dict: Caffe2 blob name -> array.

    Returns:
        Detectron2 names (``stem.conv1``, ``res2.0.conv1.norm.weight`` ...).
    """
    result = apply_rules(state_dict, _CAFFE2_RULES,
                         drop=[r'fc1000_(w|b)', r'pred_(w|b)', r'.*_momentum'])
    norms = {key.rsplit('.', 1)[0] for key in result.state_dict if '.norm.' in key}
    for norm in sorted(norms):
        weight = result.state_dict.get(f'{norm}.weight')
        if weight is None:
            continue
        result.state_dict.setdefault(f'{norm}.running_mean', torch.zeros_like(weight))
        result.state_dict.setdefault(f'{norm}.running_var', torch.ones_like(weight))
    return result


def caffe2_resnet_to_mmseg(state_dict: Mapping[str, Any]) -> ConversionResult:
    """Converts Caffe2 ResNet / ResNeXt blobs to mmseg ``ResNet`` keys.

    :func:`caffe2_resnet_to_detectron2` then :func:`detectron2_resnet_to_mmseg`.
    These weights expect BGR input in 0-255 with mean
    ``[103.530, 116.280, 123.675]``. MSRA ResNets put the stride in the first
    1x1 conv of a bottleneck (mmseg ``style='caffe'``) and use std
    ``[1, 1, 1]``; FAIR's X-101-32x8d puts it in the 3x3 conv
    (``style='pytorch'``) and uses std ``[57.375, 57.120, 58.395]``.

    Args:
        state_dict: Caffe2 blob name -> array.

    Returns:
        mmseg keys without the ``backbone.`` prefix; ``unmatched`` and
        ``dropped`` report the Caffe2 names.
    """
    renamed = caffe2_resnet_to_detectron2(state_dict)
    result = detectron2_resnet_to_mmseg(renamed.state_dict)
    result.unmatched = renamed.unmatched + result.unmatched
    result.dropped = renamed.dropped + result.dropped
    return result


def strip_prefix(state_dict: Mapping[str, Any], prefix: str) -> Dict[str, Any]:
    """The entries of ``state_dict`` under ``prefix``, with the prefix removed."""
    return OrderedDict((key[len(prefix):], value) for key, value in state_dict.items()
                       if key.startswith(prefix))
