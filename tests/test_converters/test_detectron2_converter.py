"""Detectron2 checkpoint converter: full-size models of every family convert exactly.

No official checkpoint is available offline, so each test model's own state dict
is renamed to the official Detectron2 names by :func:`to_detectron2_names`, an
inverse written here from the official module names (Detectron2 ResNet and
DeepLab stem, the official Swin, MaskFormer / Mask2Former heads), and converted
back. A correct converter returns every tensor unchanged under its own name.
"""
import pickle
import re
from collections import OrderedDict
from typing import Dict

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmseg.models.backbones import ResNeXt

import mmseg_maskformer  # noqa: F401  (registers the models)
from mmseg_maskformer.converters.common import compare_with_model
from mmseg_maskformer.converters.detectron2 import (convert_detectron2,
                                                    convert_detectron2_backbone,
                                                    detect_architecture, detect_backbone,
                                                    load_detectron2_checkpoint)
from mmseg_maskformer.engine.checkpoint import UnsafeCheckpointError
from mmseg_maskformer.registry import MODELS

# ----------------------------------------------------- our names -> Detectron2


def _stage(match: 're.Match') -> str:
    return f'res{int(match.group(1)) + 1}.{match.group(2)}'


_RESNET_TO_D2 = [
    (r'conv1\.weight', lambda m: 'stem.conv1.weight'),
    (r'bn1\.(\w+)', lambda m: f'stem.conv1.norm.{m.group(1)}'),
    (r'stem\.([036])\.weight', lambda m: f'stem.conv{int(m.group(1)) // 3 + 1}.weight'),
    (r'stem\.([147])\.(\w+)', lambda m: f'stem.conv{int(m.group(1)) // 3 + 1}.norm.{m.group(2)}'),
    (r'layer(\d)\.(\d+)\.conv(\d)\.weight', lambda m: f'{_stage(m)}.conv{m.group(3)}.weight'),
    (r'layer(\d)\.(\d+)\.bn(\d)\.(\w+)',
     lambda m: f'{_stage(m)}.conv{m.group(3)}.norm.{m.group(4)}'),
    (r'layer(\d)\.(\d+)\.downsample\.0\.weight', lambda m: f'{_stage(m)}.shortcut.weight'),
    (r'layer(\d)\.(\d+)\.downsample\.1\.(\w+)',
     lambda m: f'{_stage(m)}.shortcut.norm.{m.group(3)}'),
]
_SWIN_TO_OFFICIAL = [('patch_embed.projection', 'patch_embed.proj'), ('attn.w_msa.', 'attn.'),
                     ('ffn.layers.0.0.', 'mlp.fc1.'), ('ffn.layers.1.', 'mlp.fc2.'),
                     ('stages.', 'layers.')]


def unfold_to_official_order(value: torch.Tensor) -> torch.Tensor:
    """mmseg's nn.Unfold channel c*4 + (2*dh + dw) -> official (2*dw + dh)*C + c."""
    *lead, four_c = value.shape
    grid = value.reshape(*lead, four_c // 4, 2, 2)  # (..., C, dh, dw)
    return grid.movedim(-3, -1).transpose(-3, -2).reshape(*lead, four_c)


def _backbone_to_d2(key: str, value: torch.Tensor):
    if key.startswith(('patch_embed', 'stages', 'norm')):
        for ours, official in _SWIN_TO_OFFICIAL:
            key = key.replace(ours, official)
        if '.downsample.' in key:
            value = unfold_to_official_order(value)
        return key, value
    for pattern, rename in _RESNET_TO_D2:
        match = re.fullmatch(pattern, key)
        if match:
            return rename(match), value
    raise AssertionError(f'test inverse has no rule for backbone key {key}')


def to_detectron2_names(state_dict: Dict[str, torch.Tensor], old_layout: bool = False,
                        static_query: bool = False) -> Dict[str, np.ndarray]:
    """Our model's state dict as an official Detectron2 checkpoint's ``model`` dict.

    Args:
        state_dict: Our model's tensors.
        old_layout: Write MaskFormer's first layout (no ``pixel_decoder.``).
        static_query: Call ``query_feat`` ``static_query`` (older Mask2Former).
    """
    out = OrderedDict()
    for key, value in state_dict.items():
        if key.endswith('num_batches_tracked'):  # FrozenBN has none
            continue
        if key.startswith('backbone.'):
            name, value = _backbone_to_d2(key[len('backbone.'):], value)
            name = 'backbone.' + name
        else:
            name = 'sem_seg_head.' + key[len('decode_head.'):]
            if old_layout:
                name = name.replace('sem_seg_head.pixel_decoder.', 'sem_seg_head.')
            if static_query:
                name = name.replace('.query_feat.', '.static_query.')
        out[name] = value.numpy().copy()
    out['criterion.empty_weight'] = np.ones(8, dtype=np.float32)
    return out


# ------------------------------------------------------------------ full size

FAMILIES = [
    ('configs/mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py', 'mask2former', 'resnet'),
    ('configs/mask2former/mask2former_swin-t_8xb2-lsj-50e_coco-panoptic.py', 'mask2former',
     'swin'),
    ('configs/maskformer/maskformer_r50_8xb2-160k_ade20k-512x512.py', 'maskformer', 'resnet'),
    ('configs/maskformer/maskformer_r50_64xb1-554k_coco-panoptic.py', 'maskformer', 'resnet'),
    ('configs/maskformer/maskformer_r101c_8xb2-160k_ade20k-512x512.py', 'maskformer',
     'resnet_deep_stem'),
    ('configs/maskformer/per-pixel-baseline_r50_8xb2-160k_ade20k-512x512.py',
     'per_pixel_baseline', 'resnet'),
    ('configs/maskformer/per-pixel-baseline-plus_r50_8xb2-160k_ade20k-512x512.py',
     'per_pixel_baseline_plus', 'resnet'),
]


def build_model(config: str) -> torch.nn.Module:
    """Builds the model of a config without loading pretrained weights."""
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model)


def _check_exact(result, model: torch.nn.Module, original: Dict[str, torch.Tensor]) -> None:
    assert result.unmatched == []
    report = compare_with_model(result.state_dict, model)
    assert report == dict(missing=[], unexpected=[], shape_mismatch=[])
    for key, value in result.state_dict.items():
        assert torch.equal(value, original[key]), key


@pytest.mark.parametrize('config, architecture, backbone', FAMILIES)
def test_full_size_checkpoint_converts_exactly(config, architecture, backbone):
    torch.manual_seed(0)
    model = build_model(config)
    original = model.state_dict()
    source = to_detectron2_names(original)
    assert detect_architecture(source) == architecture
    assert detect_backbone(source) == backbone

    result = convert_detectron2(source)
    _check_exact(result, model, original)
    expected_dropped = ['criterion.empty_weight'] + [
        key for key in source if key.endswith('relative_position_index')]
    assert sorted(result.dropped) == sorted(expected_dropped)

    # the older official layouts of the same weights convert to the same dict
    legacy = to_detectron2_names(original, old_layout=architecture != 'mask2former',
                                 static_query=architecture == 'mask2former')
    assert set(legacy) != set(source)
    legacy_result = convert_detectron2(legacy)
    _check_exact(legacy_result, model, original)
    assert list(legacy_result.state_dict) == list(result.state_dict)


# ---------------------------------------------------------- reporting, errors


def test_keys_of_other_architectures_or_options_are_unmatched():
    source = OrderedDict([
        ('sem_seg_head.predictor.class_embed.weight', np.zeros((3, 4))),
        ('sem_seg_head.predictor.transformer.decoder.norm.weight', np.zeros(4)),
        # the predictor's own encoder (ENC_LAYERS > 0) has no counterpart in our model
        ('sem_seg_head.predictor.transformer.encoder.layers.0.linear1.weight', np.zeros((8, 4))),
        ('sem_seg_head.predictor.query_feat.weight', np.zeros((2, 4))),  # a Mask2Former key
        ('sem_seg_head.adapter_1.weight', np.zeros((4, 4, 1, 1))),  # old layout
        ('sem_seg_head.adapter_1.extra', np.zeros(1)),
        ('some_other_module.weight', np.zeros(1)),
        ('criterion.empty_weight', np.ones(3)),
    ])
    result = convert_detectron2(source)
    assert sorted(result.unmatched) == sorted([
        'sem_seg_head.predictor.transformer.encoder.layers.0.linear1.weight',
        'sem_seg_head.predictor.query_feat.weight',
        'sem_seg_head.adapter_1.extra',  # reported under its name in the file
        'some_other_module.weight',
    ])
    assert result.dropped == ['criterion.empty_weight']
    assert sorted(result.state_dict) == [
        'decode_head.pixel_decoder.adapter_1.weight', 'decode_head.predictor.class_embed.weight',
        'decode_head.predictor.transformer.decoder.norm.weight'
    ]


def test_backbone_keys_outside_the_rules_are_unmatched_with_prefix():
    source = {'backbone.stem.conv1.weight': np.zeros((64, 3, 7, 7)),
              'backbone.res2.0.conv4.norm.weight': np.zeros(64),
              'sem_seg_head.predictor.weight': np.zeros((3, 4, 1, 1))}
    result = convert_detectron2(source)
    assert result.unmatched == ['backbone.res2.0.conv4.norm.weight']
    assert sorted(result.state_dict) == ['backbone.conv1.weight', 'decode_head.predictor.weight']


def test_unknown_architecture_and_backbone_are_errors():
    with pytest.raises(ValueError, match='cannot tell the architecture'):
        convert_detectron2({'sem_seg_head.foo.weight': np.zeros(1)})
    with pytest.raises(ValueError, match='cannot tell the backbone'):
        detect_backbone(['backbone.foo.weight'])
    with pytest.raises(ValueError, match='unknown architecture'):
        convert_detectron2({'sem_seg_head.predictor.weight': np.zeros(1)}, architecture='detr')


# -------------------------------------------------------------------- loading


def test_load_wrapped_and_bare_pickles(tmp_path):
    weights = {'backbone.stem.conv1.weight': np.arange(6, dtype=np.float32).reshape(2, 3)}
    wrapped = tmp_path / 'wrapped.pkl'
    with open(wrapped, 'wb') as file:  # Detectron2 writes protocol-2 pickles
        pickle.dump({'model': weights, '__author__': 'Detectron2 Model Zoo',
                     'matching_heuristics': True}, file, protocol=2)
    bare = tmp_path / 'bare.pkl'
    with open(bare, 'wb') as file:
        pickle.dump(weights, file)
    for path in (wrapped, bare):
        loaded = load_detectron2_checkpoint(str(path))
        assert list(loaded) == list(weights)
        np.testing.assert_array_equal(loaded['backbone.stem.conv1.weight'],
                                      weights['backbone.stem.conv1.weight'])


def test_load_torch_file_with_state_dict(tmp_path):
    path = tmp_path / 'weights.pth'
    torch.save({'state_dict': {'a.weight': torch.arange(3.)}, 'meta': {}}, path)
    loaded = load_detectron2_checkpoint(str(path))
    np.testing.assert_array_equal(loaded['a.weight'], np.arange(3.))


def test_load_without_model_dict_is_a_clear_error(tmp_path):
    path = tmp_path / 'nothing.pkl'
    with open(path, 'wb') as file:
        pickle.dump({'__author__': 'someone', 'iteration': 3}, file)
    with pytest.raises(ValueError, match='no dict of weights'):
        load_detectron2_checkpoint(str(path))


class _Exploit:
    """Unpickling an instance calls ``os.system`` (a malicious checkpoint)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        import os
        return os.system, (f'touch {self.marker}', )


def test_malicious_pickle_is_refused_before_any_call(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'model_final.pkl'
    with open(path, 'wb') as file:
        pickle.dump({'model': {'w': np.zeros(2)}, 'x': _Exploit(str(marker))}, file)
    with pytest.raises(UnsafeCheckpointError, match='system'):
        load_detectron2_checkpoint(str(path))
    assert not marker.exists()


# ---------------------------------------------------------- ImageNet backbones


def caffe2_resnext_blobs(depth_blocks=(3, 4, 23, 3), groups=32, width_per_group=8):
    """Caffe2 blob names and shapes of FAIR's X-101-32x8d (the formulas of ResNeXt)."""
    blobs = OrderedDict(conv1_w=np.zeros((64, 3, 7, 7), np.float32))
    blobs['res_conv1_bn_s'] = np.ones(64, np.float32)
    blobs['res_conv1_bn_b'] = np.zeros(64, np.float32)
    in_channels = 64
    for stage, blocks in enumerate(depth_blocks):
        width = groups * width_per_group * 2**stage
        out_channels = 256 * 2**stage
        for block in range(blocks):
            name = f'res{stage + 2}_{block}'
            shapes = {'branch2a': (width, in_channels, 1, 1),
                      'branch2b': (width, width // groups, 3, 3),
                      'branch2c': (out_channels, width, 1, 1)}
            if block == 0:
                shapes['branch1'] = (out_channels, in_channels, 1, 1)
            for branch, shape in shapes.items():
                blobs[f'{name}_{branch}_w'] = np.zeros(shape, np.float32)
                blobs[f'{name}_{branch}_bn_s'] = np.ones(shape[0], np.float32)
                blobs[f'{name}_{branch}_bn_b'] = np.zeros(shape[0], np.float32)
            in_channels = out_channels
    blobs['fc1000_w'] = np.zeros((1000, 2048), np.float32)
    blobs['fc1000_b'] = np.zeros(1000, np.float32)
    return blobs


def test_caffe2_resnext_101_32x8d_fits_mmseg_resnext():
    blobs = caffe2_resnext_blobs()
    assert detect_backbone(blobs) == 'caffe2'
    result = convert_detectron2_backbone(blobs)
    assert result.unmatched == []
    assert sorted(result.dropped) == ['fc1000_b', 'fc1000_w']
    model = ResNeXt(depth=101, groups=32, base_width=8)
    assert compare_with_model(result.state_dict, model) == dict(
        missing=[], unexpected=[], shape_mismatch=[])
    assert torch.equal(result.state_dict['layer3.22.bn2.running_var'], torch.ones(1024))


def test_deep_stem_backbone_file_is_detected():
    stem = {f'stem.conv{index}.{what}': np.zeros(4) for index in (1, 2, 3)
            for what in ('weight', 'norm.weight')}
    result = convert_detectron2_backbone(stem)
    assert result.unmatched == []
    assert sorted(result.state_dict) == sorted(
        [f'stem.{index}.weight' for index in range(8) if index % 3 != 2])
