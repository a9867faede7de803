"""Backbone converters: converted weights compute what the source network computes.

torchvision is not a dependency, so the torchvision ResNet, Detectron2's DeepLab
stem and the official Swin patch merging are written here as small reference
modules from their published definitions.
"""
import re
from collections import OrderedDict
from typing import Dict, List

import pytest
import torch
import torch.nn.functional as F
from mmseg.models.backbones import ResNet, ResNetV1c, SwinTransformer
from mmseg.models.backbones.swin import WindowMSA
from mmseg.models.utils.embed import PatchMerging
from torch import Tensor, nn

from mmseg_maskformer.converters.backbones import (caffe2_resnet_to_mmseg,
                                                   detectron2_resnet_to_mmseg,
                                                   patch_merging_from_mmseg,
                                                   patch_merging_to_mmseg,
                                                   swin_official_to_mmseg,
                                                   torchvision_resnet_to_mmseg)

# ------------------------------------------------------------ reference modules


class RefBottleneck(nn.Module):
    """torchvision's Bottleneck (stride in the 3x3 conv)."""

    def __init__(self, inplanes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = None
        if stride != 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class RefResNet50(nn.Module):
    """torchvision's ResNet-50 layout (with its classifier ``fc``)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        inplanes = 64
        for index, (planes, blocks, stride) in enumerate(
                [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)], start=1):
            layer = [RefBottleneck(inplanes, planes, stride)]
            layer += [RefBottleneck(planes * 4, planes, 1) for _ in range(blocks - 1)]
            setattr(self, f'layer{index}', nn.Sequential(*layer))
            inplanes = planes * 4
        self.fc = nn.Linear(2048, 1000)

    def forward(self, x: Tensor) -> List[Tensor]:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        outs = []
        for index in range(1, 5):
            x = getattr(self, f'layer{index}')(x)
            outs.append(x)
        return outs


class FrozenBN(nn.Module):
    """Detectron2's FrozenBatchNorm2d: four buffers, eps 1e-5."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        for name, init in (('weight', torch.rand(channels) + 0.5), ('bias', torch.randn(channels)),
                           ('running_mean', torch.randn(channels) * 0.1),
                           ('running_var', torch.rand(channels) + 0.5)):
            self.register_buffer(name, init)

    def forward(self, x: Tensor) -> Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=False, eps=1e-5)


class D2Conv(nn.Conv2d):
    """Detectron2's Conv2d: the norm is a child named ``norm``."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__(cin, cout, 3, stride, 1, bias=False)
        self.norm = FrozenBN(cout)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.norm(super().forward(x)))


class RefDeepLabStem(nn.Module):
    """Detectron2's DeepLab stem (R-103): 3 convs 3->64 (s2), 64->64, 64->128, maxpool."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = D2Conv(3, 64, 2)
        self.conv2 = D2Conv(64, 64, 1)
        self.conv3 = D2Conv(64, 128, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv3(self.conv2(self.conv1(x)))
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)


def official_patch_merging(x: Tensor, norm: nn.LayerNorm, reduction: nn.Linear) -> Tensor:
    """The official Swin PatchMerging on (B, H, W, C) -> (B, H/2 * W/2, 2C)."""
    x0 = x[:, 0::2, 0::2, :]
    x1 = x[:, 1::2, 0::2, :]
    x2 = x[:, 0::2, 1::2, :]
    x3 = x[:, 1::2, 1::2, :]
    merged = torch.cat([x0, x1, x2, x3], -1).flatten(1, 2)
    return reduction(norm(merged))


def randomize_bn(module: nn.Module) -> None:
    """Gives every BatchNorm non-trivial affine parameters and statistics."""
    for child in module.modules():
        if isinstance(child, nn.BatchNorm2d):
            child.weight.data.uniform_(0.5, 1.5)
            child.bias.data.normal_()
            child.running_mean.normal_(0, 0.1)
            child.running_var.uniform_(0.5, 1.5)


def torchvision_to_detectron2_names(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """What Detectron2's ``convert-torchvision-to-d2.py`` writes (its string replaces)."""
    out = OrderedDict()
    for key, value in state_dict.items():
        if key.endswith('num_batches_tracked'):
            continue
        if 'layer' not in key:
            key = 'stem.' + key
        for index in range(1, 5):
            key = key.replace(f'layer{index}', f'res{index + 1}')
        for index in range(1, 4):
            key = key.replace(f'bn{index}', f'conv{index}.norm')
        key = key.replace('downsample.0', 'shortcut').replace('downsample.1', 'shortcut.norm')
        out[key] = value.numpy()
    return out


def detectron2_to_caffe2_names(state_dict: Dict[str, Tensor], eps: float) -> Dict[str, Tensor]:
    """Caffe2 blobs of a Detectron2 ResNet: batch norm folded into ``_bn_s``/``_bn_b``."""
    out = OrderedDict()
    branch = {'conv1': 'branch2a', 'conv2': 'branch2b', 'conv3': 'branch2c',
              'shortcut': 'branch1'}
    for key, value in state_dict.items():
        value = torch.as_tensor(value)
        if key.startswith('stem.fc'):
            out['fc1000_w' if key.endswith('weight') else 'fc1000_b'] = value.numpy()
            continue
        match = re.fullmatch(r'(stem|res\d\.\d+)\.(conv\d|shortcut)(\.norm)?\.(\w+)', key)
        assert match, key
        where, conv, norm, what = match.groups()
        name = 'conv1' if where == 'stem' else f"{where.replace('.', '_')}_{branch[conv]}"
        if not norm:
            out[f'{name}_w'] = value.numpy()
        elif what == 'weight':
            prefix = key[:-len('weight')]
            scale = value / torch.sqrt(torch.as_tensor(state_dict[prefix + 'running_var']) + eps)
            shift = torch.as_tensor(state_dict[prefix + 'bias']) - torch.as_tensor(
                state_dict[prefix + 'running_mean']) * scale
            bn = 'res_conv1_bn' if where == 'stem' else f'{name}_bn'
            out[f'{bn}_s'] = scale.numpy()
            out[f'{bn}_b'] = shift.numpy()
    return out


# ------------------------------------------------------------------------ tests


@pytest.fixture(scope='module')
def resnet_pair():
    """A random torchvision-layout ResNet-50 and an mmseg ResNet-50, both in eval mode."""
    torch.manual_seed(0)
    reference = RefResNet50()
    randomize_bn(reference)
    model = ResNet(depth=50)
    model.eval()  # mmseg's ResNet.train() returns None
    return reference.eval(), model


def _outputs_close(reference: nn.Module, model: nn.Module, rtol: float, atol: float) -> None:
    image = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected, actual = reference(image), model(image)
    assert len(actual) == 4
    for exp, act in zip(expected, actual):
        torch.testing.assert_close(act, exp, rtol=rtol, atol=atol)


def test_torchvision_resnet_matches_reference_outputs(resnet_pair):
    reference, model = resnet_pair
    result = torchvision_resnet_to_mmseg(reference.state_dict())
    assert result.unmatched == []
    assert sorted(result.dropped) == ['fc.bias', 'fc.weight']
    missing, unexpected = model.load_state_dict(result.state_dict, strict=True)
    assert missing == [] and unexpected == []
    _outputs_close(reference, model, rtol=1e-4, atol=1e-4)


def test_detectron2_resnet_matches_reference_outputs(resnet_pair):
    reference, model = resnet_pair
    d2_weights = torchvision_to_detectron2_names(reference.state_dict())
    assert 'stem.conv1.norm.running_var' in d2_weights and 'res5.2.conv3.weight' in d2_weights
    result = detectron2_resnet_to_mmseg(d2_weights)
    assert result.unmatched == []
    assert sorted(result.dropped) == ['stem.fc.bias', 'stem.fc.weight']
    missing, unexpected = model.load_state_dict(result.state_dict, strict=False)
    assert unexpected == [] and all(key.endswith('num_batches_tracked') for key in missing)
    _outputs_close(reference, model, rtol=1e-4, atol=1e-4)


def test_caffe2_resnet_frozen_affine_matches_reference_outputs(resnet_pair):
    reference, model = resnet_pair
    caffe2 = detectron2_to_caffe2_names(torchvision_to_detectron2_names(reference.state_dict()),
                                        eps=1e-5)
    assert 'res2_0_branch2a_bn_s' in caffe2 and 'res_conv1_bn_b' in caffe2
    result = caffe2_resnet_to_mmseg(caffe2)
    assert result.unmatched == []
    assert sorted(result.dropped) == ['fc1000_b', 'fc1000_w']
    assert torch.equal(result.state_dict['layer1.0.bn1.running_var'], torch.ones(64))
    assert torch.equal(result.state_dict['bn1.running_mean'], torch.zeros(64))
    model.load_state_dict(result.state_dict, strict=False)
    # running_var = 1 with eps 1e-5 scales by 1/sqrt(1 + 1e-5): a 5e-6 relative change per norm
    _outputs_close(reference, model, rtol=1e-3, atol=1e-3)


def test_deeplab_stem_matches_resnetv1c_stem():
    torch.manual_seed(1)
    reference = RefDeepLabStem().eval()
    d2_weights = OrderedDict(('stem.' + key, value.numpy())
                             for key, value in reference.state_dict().items())
    result = detectron2_resnet_to_mmseg(d2_weights, deep_stem=True)
    assert result.unmatched == [] and result.dropped == []
    model = ResNetV1c(depth=50, stem_channels=128)
    model.eval()
    missing, unexpected = model.load_state_dict(result.state_dict, strict=False)
    assert unexpected == []
    assert not [key for key in missing
                if key.startswith('stem.') and not key.endswith('num_batches_tracked')]
    image = torch.randn(2, 3, 32, 48)
    with torch.no_grad():
        expected = reference(image)
        actual = model.maxpool(model.stem(image))
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def test_deep_stem_names_are_rejected_by_basic_stem_rules():
    weights = {'stem.conv2.weight': torch.zeros(64, 64, 3, 3)}
    assert detectron2_resnet_to_mmseg(weights).unmatched == ['stem.conv2.weight']


@pytest.mark.parametrize('lead', [(), (6, )])
def test_patch_merging_reorder_is_inverted(lead):
    weight = torch.randn(*lead, 4 * 5)
    reordered = patch_merging_to_mmseg(weight)
    assert not torch.equal(reordered, weight)
    assert torch.equal(patch_merging_from_mmseg(reordered), weight)


def test_patch_merging_reorder_matches_official_patch_merging():
    torch.manual_seed(2)
    channels, height, width = 6, 4, 6
    norm, reduction = nn.LayerNorm(4 * channels), nn.Linear(4 * channels, 2 * channels, bias=False)
    norm.weight.data.uniform_(0.5, 1.5)
    norm.bias.data.normal_()
    mm_merge = PatchMerging(channels, 2 * channels)
    mm_merge.norm.weight.data = patch_merging_to_mmseg(norm.weight.data)
    mm_merge.norm.bias.data = patch_merging_to_mmseg(norm.bias.data)
    mm_merge.reduction.weight.data = patch_merging_to_mmseg(reduction.weight.data)
    x = torch.randn(2, height, width, channels)
    with torch.no_grad():
        expected = official_patch_merging(x, norm, reduction)
        actual, out_shape = mm_merge(x.flatten(1, 2), (height, width))
    assert tuple(out_shape) == (height // 2, width // 2)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def test_relative_position_index_of_mmseg_equals_official():
    """The bias tables are copied as they are, so both indices must agree."""
    window = 7
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window),
                                        indexing='ij')).flatten(1)
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
    relative[:, :, 0] += window - 1
    relative[:, :, 1] += window - 1
    relative[:, :, 0] *= 2 * window - 1
    official = relative.sum(-1)
    attention = WindowMSA(embed_dims=8, num_heads=2, window_size=(window, window))
    assert torch.equal(attention.relative_position_index, official)


def mmseg_swin_to_official(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Test-side inverse: mmseg Swin keys -> the official release's keys."""
    renames = [('patch_embed.projection', 'patch_embed.proj'), ('attn.w_msa.', 'attn.'),
               ('ffn.layers.0.0.', 'mlp.fc1.'), ('ffn.layers.1.', 'mlp.fc2.'),
               ('stages.', 'layers.')]
    out = OrderedDict()
    for key, value in state_dict.items():
        new_key = key
        for old, new in renames:
            new_key = new_key.replace(old, new)
        if '.downsample.' in key:
            value = patch_merging_from_mmseg(value)
        out[new_key] = value.clone()
    return out


def test_swin_official_round_trip_is_exact():
    torch.manual_seed(3)
    model = SwinTransformer(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4),
                            window_size=7, pretrain_img_size=224)
    for param in model.parameters():
        param.data.normal_()
    original = model.state_dict()
    official = mmseg_swin_to_official(original)
    assert 'layers.0.downsample.reduction.weight' in official
    assert 'layers.1.blocks.1.mlp.fc1.weight' in official
    official.update({'head.weight': torch.zeros(10, 128), 'head.bias': torch.zeros(10),
                     'norm.weight': torch.ones(128), 'norm.bias': torch.zeros(128),
                     'layers.0.blocks.1.attn_mask': torch.zeros(64, 49, 49)})
    result = swin_official_to_mmseg(official)
    assert result.unmatched == []
    assert sorted(result.dropped) == sorted(
        ['head.weight', 'head.bias', 'norm.weight', 'norm.bias', 'layers.0.blocks.1.attn_mask'] +
        [key for key in official if key.endswith('relative_position_index')])
    expected = {key: value for key, value in original.items()
                if not key.endswith('relative_position_index')}
    assert set(result.state_dict) == set(expected)
    for key, value in expected.items():
        assert torch.equal(result.state_dict[key], value), key
