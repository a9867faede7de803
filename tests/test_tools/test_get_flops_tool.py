"""tools/analysis_tools/get_flops.py on a tiny Mask2Former config (run in this process)."""
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from mmseg_maskformer.utils.flops import ms_deform_attn_flops

TOOL = Path(__file__).resolve().parents[2] / 'tools' / 'analysis_tools' / 'get_flops.py'

TINY_CONFIG = """
default_scope = 'mmseg_maskformer'
crop_size = (48, 64)
model = dict(
    type='MaskFormerSegmentor',
    backbone=dict(type='ResNet', depth=18, base_channels=8, stem_channels=8,
                  out_indices=(0, 1, 2, 3)),
    decode_head=dict(
        type='Mask2FormerDecodeHead', num_classes=4, in_channels=[8, 16, 32, 64],
        pixel_decoder=dict(type='MultiScaleDeformablePixelDecoder', feat_channels=16,
                           out_channels=16, num_encoder_layers=1, num_heads=2,
                           feedforward_dims=32, num_groups=4),
        transformer_decoder=dict(embed_dims=16, num_queries=5, num_heads=2, num_layers=2,
                                 feedforward_dims=32),
        criterion=dict(type='MaskFormerCriterion',
                       matcher=dict(type='HungarianPointMatcher', num_points=16),
                       num_points=16)),
    test_cfg=dict(semantic_on=True))
"""


@pytest.fixture(scope='module')
def tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location('get_flops_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / 'tiny_mask2former.py'
    path.write_text(TINY_CONFIG)
    return str(path)


def test_counts_the_crop_size_by_default_and_writes_json(tool, config, tmp_path, capsys):
    out = tmp_path / 'flops.json'
    record = tool.main([config, '--json-out', str(out)])
    assert record['shape'] == [48, 64]
    assert json.loads(out.read_text())['total'] == record['total']
    modules = record['modules']
    assert set(modules) >= {'backbone', 'decode_head', 'decode_head.pixel_decoder',
                            'decode_head.predictor', 'post-processing', 'total'}
    assert modules['backbone']['flops'] + modules['decode_head']['flops'] + \
        modules['post-processing']['flops'] == record['total']
    # one encoder layer over the stride 8/16/32 pixels, 2 heads of 8 channels
    queries = 6 * 8 + 3 * 4 + 2 * 2
    assert record['deform_sampling'] == ms_deform_attn_flops(1, queries, 2, 8, 3, 4)
    # semantic post-processing: upsampling (4 / pixel) + 5 queries x 4 classes per pixel
    assert modules['post-processing']['flops'] == 5 * 48 * 64 * 4 + 5 * 4 * 48 * 64
    printed = capsys.readouterr().out
    assert 'decode_head.pixel_decoder' in printed and 'deformable sampling' in printed


def test_no_postprocess_and_shape_options(tool, config):
    network = tool.main([config, '--shape', '32', '32', '--no-postprocess'])
    full = tool.main([config, '--shape', '32', '32'])
    assert network['shape'] == [32, 32]
    assert network['modules']['post-processing']['flops'] == 0
    assert network['total'] == full['total'] - full['modules']['post-processing']['flops']
    params = network['modules']['total']['params']
    assert params == sum(p.numel() for p in tool.build_model(
        tool.Config.fromfile(config)).parameters())


def test_paper_figures_are_found_by_config_name(tool):
    assert tool.paper_figure('configs/mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py'
                             )[1:3] == (44, 226)
    assert tool.paper_figure('maskformer_r50_8xb2-160k_ade20k-512x512.py')[1:3] == (41, 53)
    assert tool.paper_figure('maskformer_swin-l-in21k-384_8xb2-160k_ade20k-640x640.py'
                             )[1:3] == (212, 375)
    assert tool.paper_figure('mask2former_r18-tiny_1xb4-3k_ade20k-synthetic-128x128.py') is None


def test_input_shape_falls_back_to_512(tool):
    assert tool.input_shape(tool.Config(dict()), None) == (512, 512)
    assert tool.input_shape(tool.Config(dict(crop_size=(640, 320))), None) == (640, 320)
    assert tool.input_shape(tool.Config(dict(crop_size=(640, 320))), [8, 16]) == (8, 16)
