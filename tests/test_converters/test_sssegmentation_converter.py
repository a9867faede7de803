"""sssegmentation MaskFormer checkpoints: what maps lands in the right place.

sssegmentation cannot run here, so its state dict is synthesised: names and
shapes are written out below from its source (``ssseg/modules/models/
segmentors/maskformer/``, ``pspnet/ppm.py``, ``backbones/swin.py`` and its
``bricks``), independently of the converter, for the settings of its three
ADE20K zoo configs. The converter must move every backbone and predictor
tensor to our name unchanged, drop ``criterion.empty_weight`` and report
every pixel-decoder tensor (a PPM + FPN ours does not have) as unmatched.
"""
import importlib.util
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import pytest
import torch
from mmengine.config import Config, ConfigDict
from torch import nn

import mmseg_maskformer  # noqa: F401  (registers our modules)
from mmseg_maskformer.converters.backbones import patch_merging_to_mmseg
from mmseg_maskformer.converters.common import compare_with_model
from mmseg_maskformer.converters.sssegmentation import (convert_sssegmentation_maskformer,
                                                        sssegmentation_state_dict,
                                                        unmatched_pixel_decoder_keys)
from mmseg_maskformer.engine.checkpoint import load_checkpoint_safe
from mmseg_maskformer.registry import MODELS

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / 'tools' / 'model_converters' / 'ssseg2mmseg_maskformer.py'
Shapes = Dict[str, Tuple[int, ...]]

#: sssegmentation's zoo configs (maskformer_swin{tiny,small,base}_ade20k.py) -> our rows.
ROWS = {
    'configs/maskformer/maskformer_swin-t_8xb2-130e_ade20k-512x512.py':
        dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7),
    'configs/maskformer/maskformer_swin-s_8xb2-130e_ade20k-512x512.py':
        dict(embed_dims=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24), window_size=7),
    'configs/maskformer/maskformer_swin-b-in21k-384_8xb2-130e_ade20k-640x640.py':
        dict(embed_dims=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32), window_size=12),
}
#: sssegmentation's MaskFormer head settings (its base config).
HEAD = dict(feats_channels=512, mask_feats_channels=256, pool_scales=(1, 2, 3, 6),
            hidden_dim=256, num_queries=100, dec_layers=6, dim_feedforward=2048)
INT_BUFFERS = ('relative_position_index', 'num_batches_tracked')


def ssseg_swin(embed_dims: int, depths: Sequence[int], num_heads: Sequence[int],
               window_size: int, mlp_ratio: int = 4) -> Shapes:
    """``backbone_net.*`` of sssegmentation's SwinTransformer (patch_norm, no abs pos)."""
    shapes = {'patch_embed.projection.weight': (embed_dims, 3, 4, 4),
              'patch_embed.projection.bias': (embed_dims,),
              'patch_embed.norm.weight': (embed_dims,), 'patch_embed.norm.bias': (embed_dims,)}
    table = ((2 * window_size - 1) ** 2, )
    for stage, (depth, heads) in enumerate(zip(depths, num_heads)):
        dims = embed_dims * 2 ** stage
        for block in range(depth):
            pre = f'stages.{stage}.blocks.{block}.'
            for norm in ('norm1', 'norm2'):
                shapes.update({pre + norm + '.weight': (dims,), pre + norm + '.bias': (dims,)})
            shapes.update({
                pre + 'attn.w_msa.relative_position_bias_table': table + (heads,),
                pre + 'attn.w_msa.relative_position_index': (window_size ** 2,) * 2,
                pre + 'attn.w_msa.qkv.weight': (3 * dims, dims),
                pre + 'attn.w_msa.qkv.bias': (3 * dims,),
                pre + 'attn.w_msa.proj.weight': (dims, dims), pre + 'attn.w_msa.proj.bias': (dims,),
                pre + 'ffn.layers.0.0.weight': (mlp_ratio * dims, dims),
                pre + 'ffn.layers.0.0.bias': (mlp_ratio * dims,),
                pre + 'ffn.layers.1.weight': (dims, mlp_ratio * dims),
                pre + 'ffn.layers.1.bias': (dims,)})
        if stage < len(depths) - 1:  # PatchMerging: unfold order, no reduction bias
            shapes.update({f'stages.{stage}.downsample.norm.weight': (4 * dims,),
                           f'stages.{stage}.downsample.norm.bias': (4 * dims,),
                           f'stages.{stage}.downsample.reduction.weight': (2 * dims, 4 * dims)})
        shapes.update({f'norm{stage}.weight': (dims,), f'norm{stage}.bias': (dims,)})
    return {'backbone_net.' + key: shape for key, shape in shapes.items()}


def ssseg_predictor(in_channels: int, num_classes: int, hidden_dim: int, num_queries: int,
                    dec_layers: int, dim_feedforward: int, mask_dim: int) -> Shapes:
    """``decoder_predictor.*``: its Predictor with ``enc_layers=0``, post-norm decoder."""
    shapes = {}
    for i in range(dec_layers):
        pre = f'transformer.decoder.layers.{i}.'
        for attn in ('self_attn', 'multihead_attn'):
            shapes.update({pre + attn + '.in_proj_weight': (3 * hidden_dim, hidden_dim),
                           pre + attn + '.in_proj_bias': (3 * hidden_dim,),
                           pre + attn + '.out_proj.weight': (hidden_dim, hidden_dim),
                           pre + attn + '.out_proj.bias': (hidden_dim,)})
        shapes.update({pre + 'linear1.weight': (dim_feedforward, hidden_dim),
                       pre + 'linear1.bias': (dim_feedforward,),
                       pre + 'linear2.weight': (hidden_dim, dim_feedforward),
                       pre + 'linear2.bias': (hidden_dim,)})
        for norm in ('norm1', 'norm2', 'norm3'):
            shapes.update({pre + norm + '.weight': (hidden_dim,),
                           pre + norm + '.bias': (hidden_dim,)})
    shapes.update({'transformer.decoder.norm.weight': (hidden_dim,),
                   'transformer.decoder.norm.bias': (hidden_dim,),
                   'query_embed.weight': (num_queries, hidden_dim),
                   'input_proj.weight': (hidden_dim, in_channels, 1, 1),
                   'input_proj.bias': (hidden_dim,),
                   'class_embed.weight': (num_classes + 1, hidden_dim),
                   'class_embed.bias': (num_classes + 1,)})
    for i, out in enumerate((hidden_dim, hidden_dim, mask_dim)):
        shapes.update({f'mask_embed.layers.{i}.weight': (out, hidden_dim),
                       f'mask_embed.layers.{i}.bias': (out,)})
    return {'decoder_predictor.' + key: shape for key, shape in shapes.items()}


def batch_norm(prefix: str, channels: int) -> Shapes:
    return {prefix + name: (channels,) for name in ('weight', 'bias', 'running_mean',
                                                    'running_var')} | {
        prefix + 'num_batches_tracked': ()}


def ssseg_pixel_decoder(in_channels_list: Sequence[int], feats: int, mask_feats: int,
                        pool_scales: Sequence[int], num_fpn_convs: int) -> Shapes:
    """PPM + FPN + ``decoder_mask`` (conv, BN, act Sequentials; 4 fpn convs before 2023-05)."""
    top = in_channels_list[-1]
    shapes: Shapes = {}
    for i, _ in enumerate(pool_scales):
        shapes[f'ppm_net.branches.{i}.1.weight'] = (feats, top, 1, 1)
        shapes.update(batch_norm(f'ppm_net.branches.{i}.2.', feats))
    shapes['ppm_net.bottleneck.0.weight'] = (feats, top + feats * len(pool_scales), 3, 3)
    shapes.update(batch_norm('ppm_net.bottleneck.1.', feats))
    for i, channels in enumerate(in_channels_list[:-1]):
        shapes[f'lateral_convs.{i}.0.weight'] = (feats, channels, 1, 1)
        shapes.update(batch_norm(f'lateral_convs.{i}.1.', feats))
    for i in range(num_fpn_convs):
        shapes[f'fpn_convs.{i}.0.weight'] = (feats, feats, 3, 3)
        shapes.update(batch_norm(f'fpn_convs.{i}.1.', feats))
    shapes.update({'decoder_mask.0.weight': (mask_feats, feats, 3, 3),
                   'decoder_mask.0.bias': (mask_feats,)})
    return shapes


def ssseg_shapes(swin: Dict, num_classes: int, head: Dict = HEAD,
                 num_fpn_convs: int = 3) -> Shapes:
    """The whole sssegmentation MaskFormer state dict: name -> shape."""
    channels = [swin['embed_dims'] * 2 ** i for i in range(4)]
    shapes = ssseg_swin(**swin)
    shapes.update(ssseg_pixel_decoder(channels, head['feats_channels'],
                                      head['mask_feats_channels'], head['pool_scales'],
                                      num_fpn_convs))
    shapes.update(ssseg_predictor(channels[-1], num_classes, head['hidden_dim'],
                                  head['num_queries'], head['dec_layers'],
                                  head['dim_feedforward'], head['mask_feats_channels']))
    shapes['criterion.empty_weight'] = (num_classes + 1,)
    return shapes


def expected_name(ssseg_key: str) -> Optional[str]:
    """Where each sssegmentation tensor belongs in our model (None: nowhere)."""
    for theirs, ours in (('backbone_net.', 'backbone.'),
                         ('decoder_predictor.', 'decode_head.predictor.')):
        if ssseg_key.startswith(theirs):
            return ours + ssseg_key[len(theirs):]
    return None


def make_tensors(shapes: Shapes, fill: bool) -> Dict[str, torch.Tensor]:
    """Random tensors (``fill``) or uninitialised ones (cheap, for full-size models)."""
    tensors = {}
    for key, shape in shapes.items():
        if key.rsplit('.', 1)[-1] in INT_BUFFERS:
            tensors[key] = (torch.randint(0, 10, shape) if fill else
                            torch.empty(shape, dtype=torch.long))
        else:
            tensors[key] = torch.randn(shape) if fill else torch.empty(shape)
    return tensors


def build_ours(cfg: ConfigDict) -> nn.Module:
    cfg.backbone.init_cfg = None
    return MODELS.build(cfg)


def check_conversion(weights: Dict[str, torch.Tensor], model: nn.Module):
    """The conversion report and the model check, with every expectation asserted."""
    result = convert_sssegmentation_maskformer(weights)
    pixel_decoder = [key for key in weights if expected_name(key) is None
                     and not key.startswith('criterion.')]
    assert result.dropped == ['criterion.empty_weight']
    assert sorted(result.unmatched) == sorted(pixel_decoder)
    assert sorted(unmatched_pixel_decoder_keys(result)) == sorted(pixel_decoder)
    expected = {expected_name(key): key for key in weights if expected_name(key)}
    assert sorted(result.state_dict) == sorted(expected)
    for ours, theirs in expected.items():  # moved, not altered (no reorder, no copy)
        assert result.state_dict[ours].shape == weights[theirs].shape, ours
        assert result.state_dict[ours].data_ptr() == weights[theirs].data_ptr(), ours
    report = compare_with_model(result.state_dict, model)
    assert report['unexpected'] == [] and report['shape_mismatch'] == []
    assert sorted(report['missing']) == sorted(
        key for key in model.state_dict() if key.startswith('decode_head.pixel_decoder.'))
    return result


@pytest.mark.parametrize('config', sorted(ROWS))
def test_zoo_layout_fits_our_130e_rows_except_the_pixel_decoder(config):
    cfg = Config.fromfile(str(ROOT / config))
    model = build_ours(cfg.model)
    shapes = ssseg_shapes(ROWS[config], num_classes=cfg.model.decode_head.num_classes)
    check_conversion(make_tensors(shapes, fill=False), model)


def tiny_swin() -> Dict:
    return dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(2, 2, 4, 4), window_size=7)


def tiny_model_cfg() -> ConfigDict:
    swin = tiny_swin()
    return ConfigDict(
        type='MaskFormerSegmentor',
        backbone=dict(type='SwinTransformer', embed_dims=swin['embed_dims'],
                      depths=list(swin['depths']), num_heads=list(swin['num_heads']),
                      window_size=swin['window_size'], mlp_ratio=4, qkv_bias=True,
                      patch_norm=True, out_indices=(0, 1, 2, 3)),
        decode_head=dict(
            type='MaskFormerDecodeHead', num_classes=5, in_channels=[16, 32, 64, 128],
            pixel_decoder=dict(type='FPNPixelDecoder', feat_channels=32, out_channels=24,
                               num_groups=8),
            transformer_in_feature='res5',
            transformer_decoder=dict(embed_dims=32, num_queries=6, num_heads=4, num_layers=2,
                                     feedforward_dims=40)),
        test_cfg=dict(semantic_on=True))


TINY_HEAD = dict(feats_channels=48, mask_feats_channels=24, pool_scales=(1, 2, 3, 6),
                 hidden_dim=32, num_queries=6, dec_layers=2, dim_feedforward=40)


@pytest.mark.parametrize('num_fpn_convs', [3, 4])
def test_tensors_load_unchanged_and_the_pixel_decoder_is_left_alone(num_fpn_convs):
    torch.manual_seed(0)
    model = build_ours(tiny_model_cfg())
    weights = make_tensors(ssseg_shapes(tiny_swin(), 5, TINY_HEAD, num_fpn_convs), fill=True)
    result = check_conversion(weights, model)
    before = {k: v.clone() for k, v in model.state_dict().items() if '.pixel_decoder.' in k}
    model.load_state_dict(result.state_dict, strict=False)
    state = model.state_dict()
    for key, value in weights.items():
        if expected_name(key):
            assert torch.equal(state[expected_name(key)], value), key
    for key, value in before.items():
        assert torch.equal(state[key], value), key
    # sssegmentation's Swin already holds patch merging in nn.Unfold order: a
    # reorder from the official layout would have changed these weights.
    merging = weights['backbone_net.stages.0.downsample.reduction.weight']
    assert not torch.equal(patch_merging_to_mmseg(merging), merging)
    assert torch.equal(state['backbone.stages.0.downsample.reduction.weight'], merging)


def test_checkpoint_wrapper_and_module_prefix_are_removed():
    weights = make_tensors(ssseg_shapes(tiny_swin(), 5, TINY_HEAD), fill=True)
    checkpoint = dict(model={'module.' + k: v for k, v in weights.items()}, epoch=130,
                      optimizer=dict(state={}, param_groups=[]))
    unwrapped = sssegmentation_state_dict(checkpoint)
    assert list(unwrapped) == list(weights)
    assert sssegmentation_state_dict(dict(state_dict=weights)).keys() == weights.keys()
    assert sssegmentation_state_dict(weights).keys() == weights.keys()


def test_encoder_layers_and_foreign_keys_are_reported():
    weights = {'decoder_predictor.transformer.encoder.layers.0.linear1.weight': torch.zeros(2),
               'auxiliary_decoder.conv.weight': torch.zeros(2),
               'decoder_predictor.input_proj.weight': torch.zeros(2)}
    result = convert_sssegmentation_maskformer(weights)
    assert result.unmatched == list(weights)[:2]
    assert list(result.state_dict) == ['decode_head.predictor.input_proj.weight']
    assert unmatched_pixel_decoder_keys(result) == []


def run_cli(*args) -> int:
    spec = importlib.util.spec_from_file_location(CLI.stem, CLI)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main([str(arg) for arg in args])


def test_cli_needs_allow_partial_and_says_why(tmp_path, capsys):
    config, src, dst = tmp_path / 'tiny.py', tmp_path / 'maskformer_ssseg.pth', tmp_path / 'o.pth'
    config.write_text(f'model = {tiny_model_cfg().to_dict()!r}\n')
    weights = make_tensors(ssseg_shapes(tiny_swin(), 5, TINY_HEAD), fill=True)
    torch.save(dict(model=weights, epoch=130,
                    optimizer=dict(state={}, param_groups=[dict(lr=6e-5, betas=(0.9, 0.999))])),
               src)
    assert run_cli(src, dst, '--config', config) == 1
    out = capsys.readouterr().out
    assert 'has no counterpart in our FPNPixelDecoder' in out
    assert 'ppm_net.bottleneck.0.weight' in out and 'decode_head.pixel_decoder.' in out
    assert not dst.exists()

    assert run_cli(src, dst, '--config', config, '--allow-partial') == 0
    checkpoint = load_checkpoint_safe(str(dst))
    assert checkpoint['meta']['converter'] == 'ssseg2mmseg_maskformer'
    assert checkpoint['meta']['dropped'] == ['criterion.empty_weight']
    assert 'decoder_mask.0.weight' in checkpoint['meta']['unmatched']
    model = build_ours(tiny_model_cfg())
    missing, unexpected = model.load_state_dict(checkpoint['state_dict'], strict=False)
    assert unexpected == [] and missing and all('.pixel_decoder.' in k for k in missing)
    assert torch.equal(checkpoint['state_dict']['decode_head.predictor.class_embed.weight'],
                       weights['decoder_predictor.class_embed.weight'])
