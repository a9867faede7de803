"""mmdetection Mask2Former checkpoints converted into ours give the same logits.

A tiny mmdet ``Mask2Former`` detector is built from mmdet's own released COCO
panoptic config (sizes shrunk, mmdet's own ResNet or SwinTransformer), its
random weights perturbed so that no identity-initialised norm can hide a
mapping error; its state dict is converted, loaded strictly into an
equivalent tiny model of ours, and both run on the same preprocessed input.
"""
import importlib.util
import os.path as osp
from pathlib import Path
from typing import Dict, Tuple

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config, ConfigDict
from mmengine.registry import DefaultScope
from torch import nn

import mmseg_maskformer  # noqa: F401  (registers our modules)
from mmseg_maskformer.converters.common import compare_with_model
from mmseg_maskformer.converters.mmdet_checkpoint import (convert_mmdet_mask2former,
                                                          detect_head_prefix, is_legacy_layout)
from mmseg_maskformer.engine.checkpoint import load_checkpoint_safe
from mmseg_maskformer.registry import MODELS

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / 'tools' / 'model_converters' / 'mmdet2mmseg_maskformer.py'
THINGS, STUFF = 4, 3
SIZES = dict(feat=32, out=24, queries=6, enc_layers=2, dec_layers=3, heads=4, groups=8)
RESNET = dict(channels=[8, 16, 32, 64])
SWIN = dict(embed_dims=16, depths=[2, 2, 2, 2], num_heads=[2, 2, 4, 4], window_size=7,
            mlp_ratio=2, channels=[16, 32, 64, 128])


#: mmdet's released zoo configs -> our rows for the same checkpoints.
ZOO_ROWS = {
    'mask2former_r50_8xb2-lsj-50e_coco-panoptic.py':
        'mask2former_r50_8xb2-lsj-50e_coco-panoptic.py',
    'mask2former_swin-t-p4-w7-224_8xb2-lsj-50e_coco-panoptic.py':
        'mask2former_swin-t_8xb2-lsj-50e_coco-panoptic.py',
    'mask2former_r50_8xb2-lsj-50e_coco.py': 'mask2former_r50_8xb2-lsj-50e_coco.py',
}


def mmdet_released_config(name: str = 'mask2former_r50_8xb2-lsj-50e_coco-panoptic.py') -> str:
    import mmdet
    path = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', 'mask2former', name)
    assert osp.isfile(path), 'mmdet was installed without its configs'
    return path


def mmdet_backbone(kind: str) -> Dict:
    if kind == 'resnet':
        return dict(_delete_=True, type='ResNet', depth=18, base_channels=8, stem_channels=8,
                    out_indices=(0, 1, 2, 3), norm_cfg=dict(type='BN', requires_grad=False),
                    norm_eval=True, style='pytorch')
    return dict(_delete_=True, type='SwinTransformer', embed_dims=SWIN['embed_dims'],
                depths=SWIN['depths'], num_heads=SWIN['num_heads'],
                window_size=SWIN['window_size'], mlp_ratio=SWIN['mlp_ratio'], qkv_bias=True,
                drop_path_rate=0.0, patch_norm=True, out_indices=(0, 1, 2, 3),
                convert_weights=False)


def mmdet_model_cfg(kind: str) -> ConfigDict:
    """mmdet's released Mask2Former R-50 COCO panoptic model, shrunk."""
    cfg = Config.fromfile(mmdet_released_config())
    channels = (RESNET if kind == 'resnet' else SWIN)['channels']
    feat, layer = SIZES['feat'], 'panoptic_head.transformer_decoder.layer_cfg.'
    enc = 'panoptic_head.pixel_decoder.encoder.layer_cfg.'
    options = {
        'backbone': mmdet_backbone(kind),
        'panoptic_head.in_channels': channels, 'panoptic_head.feat_channels': feat,
        'panoptic_head.out_channels': SIZES['out'],
        'panoptic_head.num_queries': SIZES['queries'],
        'panoptic_head.num_things_classes': THINGS, 'panoptic_head.num_stuff_classes': STUFF,
        'panoptic_fusion_head.num_things_classes': THINGS,
        'panoptic_fusion_head.num_stuff_classes': STUFF,
        'panoptic_head.loss_cls.class_weight': [1.0] * (THINGS + STUFF) + [0.1],
        'panoptic_head.pixel_decoder.norm_cfg.num_groups': SIZES['groups'],
        'panoptic_head.pixel_decoder.positional_encoding.num_feats': feat // 2,
        'panoptic_head.pixel_decoder.encoder.num_layers': SIZES['enc_layers'],
        enc + 'self_attn_cfg.embed_dims': feat, enc + 'self_attn_cfg.num_heads': SIZES['heads'],
        enc + 'ffn_cfg.embed_dims': feat, enc + 'ffn_cfg.feedforward_channels': 48,
        'panoptic_head.positional_encoding.num_feats': feat // 2,
        'panoptic_head.transformer_decoder.num_layers': SIZES['dec_layers'],
        layer + 'self_attn_cfg.embed_dims': feat, layer + 'self_attn_cfg.num_heads': SIZES['heads'],
        layer + 'cross_attn_cfg.embed_dims': feat,
        layer + 'cross_attn_cfg.num_heads': SIZES['heads'],
        layer + 'ffn_cfg.embed_dims': feat, layer + 'ffn_cfg.feedforward_channels': 40,
    }
    cfg.merge_from_dict({'model.' + key: value for key, value in options.items()})
    cfg.model.pop('data_preprocessor')
    return cfg.model


def our_model_cfg(kind: str) -> ConfigDict:
    """The same network as :func:`mmdet_model_cfg`, in our terms."""
    if kind == 'resnet':
        backbone = dict(type='ResNet', depth=18, base_channels=8, stem_channels=8,
                        out_indices=(0, 1, 2, 3), norm_cfg=dict(type='BN', requires_grad=False),
                        norm_eval=True, style='pytorch')
    else:
        backbone = dict(type='SwinTransformer', embed_dims=SWIN['embed_dims'],
                        depths=SWIN['depths'], num_heads=SWIN['num_heads'],
                        window_size=SWIN['window_size'], mlp_ratio=SWIN['mlp_ratio'],
                        qkv_bias=True, drop_path_rate=0.0, patch_norm=True,
                        out_indices=(0, 1, 2, 3))
    return ConfigDict(
        type='MaskFormerSegmentor', backbone=backbone,
        decode_head=dict(
            type='Mask2FormerDecodeHead', num_classes=THINGS + STUFF,
            in_channels=(RESNET if kind == 'resnet' else SWIN)['channels'],
            pixel_decoder=dict(type='MultiScaleDeformablePixelDecoder',
                               feat_channels=SIZES['feat'], out_channels=SIZES['out'],
                               num_encoder_layers=SIZES['enc_layers'], num_heads=SIZES['heads'],
                               feedforward_dims=48, num_groups=SIZES['groups']),
            transformer_decoder=dict(embed_dims=SIZES['feat'], num_queries=SIZES['queries'],
                                     num_heads=SIZES['heads'], num_layers=SIZES['dec_layers'],
                                     feedforward_dims=40),
            criterion=dict(type='MaskFormerCriterion',
                           matcher=dict(type='HungarianPointMatcher', num_points=64),
                           num_points=64)),
        test_cfg=dict(semantic_on=True))


def perturb_(model: nn.Module) -> None:
    """Random weights everywhere, norms and BN statistics included."""
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.02)
        for module in model.modules():
            if isinstance(module, (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm2d)):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.3, 0.3)
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)


def build_mmdet(kind: str) -> nn.Module:
    from mmdet.registry import MODELS as MMDET_MODELS
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MMDET_MODELS.build(mmdet_model_cfg(kind)).eval()
    perturb_(model)
    return model


def build_ours(kind: str) -> nn.Module:
    torch.manual_seed(1)  # other weights than mmdet's: the load must replace them all
    return MODELS.build(our_model_cfg(kind)).eval()


def assert_exact_fit(result, model: nn.Module) -> None:
    assert result.unmatched == []
    assert compare_with_model(result.state_dict, model) == dict(
        missing=[], unexpected=[], shape_mismatch=[])


@pytest.mark.parametrize('kind', ['resnet', 'swin'])
def test_converted_mmdet_weights_give_the_same_logits(kind):
    theirs, ours = build_mmdet(kind), build_ours(kind)
    result = convert_mmdet_mask2former(theirs.state_dict())
    assert_exact_fit(result, ours)
    missing, unexpected = ours.load_state_dict(result.state_dict, strict=True)
    assert missing == [] and unexpected == []

    inputs = torch.randn(2, 3, 64, 96)  # a preprocessed (normalised, padded) batch
    samples = [DetDataSample(metainfo=dict(img_shape=(64, 96), batch_input_shape=(64, 96)))
               for _ in range(2)]
    with torch.no_grad():
        all_cls, all_masks = theirs.panoptic_head(theirs.extract_feat(inputs), samples)
        our_cls, our_masks = ours(inputs, mode='tensor')
    assert our_cls.shape == (2, SIZES['queries'], THINGS + STUFF + 1)
    assert our_masks.shape == (2, SIZES['queries'], 16, 24)
    assert our_masks.abs().max() > 1e-2  # not a trivially zero comparison
    torch.testing.assert_close(our_cls, all_cls[-1], atol=1e-4, rtol=0)
    torch.testing.assert_close(our_masks, all_masks[-1], atol=1e-4, rtol=0)


@pytest.mark.parametrize('mmdet_config', sorted(ZOO_ROWS))
def test_full_size_zoo_models_fit_our_rows_exactly(mmdet_config):
    """mmdet's released models (as their zoo files hold them) against our configs."""
    from mmdet.registry import MODELS as MMDET_MODELS
    theirs_cfg = Config.fromfile(mmdet_released_config(mmdet_config)).model
    theirs_cfg.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmdet'):
        theirs = MMDET_MODELS.build(theirs_cfg)
    ours_cfg = Config.fromfile(str(ROOT / 'configs' / 'mask2former' / ZOO_ROWS[mmdet_config]))
    ours_cfg.model.backbone.init_cfg = None
    result = convert_mmdet_mask2former(theirs.state_dict())
    assert_exact_fit(result, MODELS.build(ours_cfg.model))
    assert len(result.state_dict) == len(theirs.state_dict())


def to_mmdet2_names(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """mmdetection 2.x names (mmcv ``BaseTransformerLayer``), written out by hand."""
    renamed = {}
    for key, value in state_dict.items():
        if '.pixel_decoder.encoder.layers.' in key:
            key = key.replace('.self_attn.', '.attentions.0.').replace('.ffn.', '.ffns.0.')
        elif '.transformer_decoder.layers.' in key:
            key = (key.replace('.cross_attn.', '.attentions.0.')
                   .replace('.self_attn.', '.attentions.1.').replace('.ffn.', '.ffns.0.'))
        renamed[key] = value
    return renamed


@pytest.fixture(scope='module')
def mmdet_state() -> Tuple[Dict[str, torch.Tensor], nn.Module]:
    return build_mmdet('resnet').state_dict(), build_ours('resnet')


def assert_same_tensors(result, reference) -> None:
    assert list(result.state_dict) == list(reference.state_dict)
    for key, value in reference.state_dict.items():
        assert torch.equal(result.state_dict[key], value), key


def test_mmdet2_layout_converts_to_the_same_tensors(mmdet_state):
    state_dict, ours = mmdet_state
    legacy = to_mmdet2_names(state_dict)
    assert is_legacy_layout(legacy) and not is_legacy_layout(state_dict)
    assert any('.attentions.1.attn.in_proj_weight' in key for key in legacy)
    result = convert_mmdet_mask2former(legacy)
    assert_exact_fit(result, ours)
    assert_same_tensors(result, convert_mmdet_mask2former(state_dict))


def test_mmseg_head_prefix_and_wrapper_prefix_are_understood(mmdet_state):
    state_dict, ours = mmdet_state
    mmseg = {('module.' + key).replace('module.panoptic_head.', 'module.decode_head.'): value
             for key, value in state_dict.items()}
    assert detect_head_prefix(k.replace('module.', '', 1) for k in mmseg) == 'decode_head'
    result = convert_mmdet_mask2former(mmseg)
    assert_exact_fit(result, ours)
    assert_same_tensors(result, convert_mmdet_mask2former(state_dict))


def test_foreign_keys_are_reported_not_dropped(mmdet_state):
    state_dict, ours = mmdet_state
    extra = dict(state_dict)
    extra['neck.lateral.weight'] = torch.zeros(1)
    extra['panoptic_head.extra_branch.weight'] = torch.zeros(1)
    del extra['panoptic_head.cls_embed.bias']
    result = convert_mmdet_mask2former(extra)
    assert sorted(result.unmatched) == ['neck.lateral.weight',
                                        'panoptic_head.extra_branch.weight']
    report = compare_with_model(result.state_dict, ours)
    assert report['missing'] == ['decode_head.predictor.class_embed.bias']


def test_a_checkpoint_without_an_mmdet_head_is_refused():
    ours = build_ours('resnet').state_dict()
    with pytest.raises(ValueError, match='no mmdet-style Mask2Former head'):
        convert_mmdet_mask2former(ours)
    with pytest.raises(ValueError, match='head_prefix must be'):
        convert_mmdet_mask2former({'backbone.conv1.weight': torch.zeros(1)}, head_prefix='x')


def run_cli(*args) -> int:
    spec = importlib.util.spec_from_file_location(CLI.stem, CLI)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main([str(arg) for arg in args])


def write_config(path: Path) -> None:
    path.write_text(f'model = {dict(our_model_cfg("resnet").to_dict())!r}\n')


def test_cli_writes_a_checkpoint_that_loads_strictly(tmp_path, mmdet_state, capsys):
    state_dict, ours = mmdet_state
    src, dst, config = tmp_path / 'm2f_mmdet.pth', tmp_path / 'out' / 'm2f.pth', tmp_path / 'c.py'
    write_config(config)
    torch.save(dict(meta=dict(mmdet_version='3.3.0'), state_dict=state_dict), src)
    assert run_cli(src, dst, '--config', config) == 0, capsys.readouterr().out
    checkpoint = load_checkpoint_safe(str(dst))
    assert checkpoint['meta']['converter'] == 'mmdet2mmseg_maskformer'
    assert checkpoint['meta']['source'] == 'm2f_mmdet.pth'
    ours.load_state_dict(checkpoint['state_dict'], strict=True)
    assert torch.equal(ours.state_dict()['decode_head.predictor.class_embed.weight'],
                       state_dict['panoptic_head.cls_embed.weight'])


def test_cli_refuses_an_inexact_conversion_unless_allowed(tmp_path, mmdet_state, capsys):
    state_dict, _ = mmdet_state
    partial = {k: v for k, v in state_dict.items() if 'query_feat' not in k}
    partial['panoptic_head.unknown.weight'] = torch.zeros(2)
    src, dst, config = tmp_path / 'partial.pth', tmp_path / 'partial_out.pth', tmp_path / 'c.py'
    write_config(config)
    torch.save(dict(state_dict=partial), src)
    assert run_cli(src, dst, '--config', config) == 1
    out = capsys.readouterr().out
    assert 'panoptic_head.unknown.weight' in out
    assert 'decode_head.predictor.query_feat.weight' in out
    assert not dst.exists()
    assert run_cli(src, dst, '--config', config, '--allow-partial') == 0
    assert load_checkpoint_safe(str(dst))['meta']['unmatched'] == ['panoptic_head.unknown.weight']


def test_cli_refuses_a_file_that_is_not_a_mask2former(tmp_path, capsys):
    src, config = tmp_path / 'other.pth', tmp_path / 'c.py'
    write_config(config)
    torch.save(dict(state_dict={'backbone.conv1.weight': torch.zeros(1)}), src)
    assert run_cli(src, tmp_path / 'never.pth', '--config', config) == 2
    assert 'no mmdet-style Mask2Former head' in capsys.readouterr().err
    assert not (tmp_path / 'never.pth').exists()
