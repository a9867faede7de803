"""tools/analysis_tools/benchmark.py and its measurement core (no timing is asserted)."""
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest
import torch

from mmseg_maskformer.utils.benchmark import (Stats, measure_peak_memory, synthetic_batch,
                                              time_fn)

TOOL = Path(__file__).resolve().parents[2] / 'tools' / 'analysis_tools' / 'benchmark.py'

TINY_CONFIG = """
default_scope = 'mmseg_maskformer'
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
    test_cfg=dict(semantic_on=True, thing_class_ids=[0, 1]))
"""


@pytest.fixture(scope='module')
def tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location('benchmark_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / 'tiny_mask2former.py'
    path.write_text(TINY_CONFIG)
    return str(path)


def test_time_fn_times_each_repeat_after_warmup():
    ticks = iter([10.0, 11.0, 20.0, 23.0, 30.0, 32.0])
    calls, syncs = [], []
    stats = time_fn(lambda: calls.append(1), warmup=2, repeats=3, sync=lambda: syncs.append(1),
                    clock=lambda: next(ticks))
    assert len(calls) == 5  # 2 warm-up + 3 timed
    assert len(syncs) == 4  # after the warm-up and after each timed call
    assert stats.times == [1.0, 3.0, 2.0]
    assert (stats.median, stats.min, stats.mean) == (2.0, 1.0, 2.0)
    with pytest.raises(ValueError):
        time_fn(lambda: None, repeats=0)
    with pytest.raises(ValueError):
        Stats.from_times([])


def test_synthetic_batch_targets_partition_each_image():
    inputs, samples = synthetic_batch(3, (24, 40), num_classes=6, num_regions=4, seed=1)
    assert inputs.shape == (3, 3, 24, 40) and inputs.dtype == torch.float32
    for sample in samples:
        seg = sample.gt_sem_seg.data
        gt = sample.gt_instances
        assert seg.shape == (1, 24, 40)
        assert gt.masks.dtype == torch.bool and gt.masks.shape[1:] == (24, 40)
        assert gt.masks.sum(0).eq(1).all()  # disjoint and covering
        assert torch.equal(torch.unique(seg), gt.labels)
        for label, mask in zip(gt.labels, gt.masks):
            assert torch.equal(mask, seg[0] == label)
        assert sample.metainfo['batch_input_shape'] == (24, 40)
    again, _ = synthetic_batch(3, (24, 40), num_classes=6, num_regions=4, seed=1)
    assert torch.equal(inputs, again)


def test_peak_memory_sees_a_held_allocation():
    def hold() -> None:
        block = torch.ones(16 * 2**20)  # 64 MiB
        time.sleep(0.05)
        del block

    assert measure_peak_memory(hold, 'cpu') >= 32


def test_outputs_default_to_the_config_and_are_checked(tool):
    assert tool.resolve_outputs(dict(semantic_on=True, instance_on=True), None) == [
        'semantic', 'instance']
    assert tool.resolve_outputs({}, None) == ['semantic']
    assert tool.resolve_outputs({}, 'panoptic, instance') == ['panoptic', 'instance']
    with pytest.raises(ValueError):
        tool.resolve_outputs({}, 'depth')


def test_benchmark_against_mmseg_writes_json(tool, config, tmp_path, capsys):
    out = tmp_path / 'bench.json'
    record = tool.main([config, '--shape', '32', '32', '--batch-size', '2', '--mode', 'both',
                        '--repeats', '2', '--warmup', '0', '--device', 'cpu', '--compare',
                        'mmseg', '--json-out', str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(record))
    env = record['environment']
    assert env['shape'] == [32, 32] and env['outputs'] == ['semantic']
    for impl in ('ours', 'mmseg'):
        for step in ('inference', 'train'):
            result = record['results'][impl][step]
            assert len(result['times_s']) == 2 and min(result['times_s']) > 0
            assert result['images_per_s'] == pytest.approx(2 / result['median_s'])
            assert result['peak_memory_mib'] >= 0
    table = capsys.readouterr().out
    assert 'mmseg' in table and 'median / ours' in table


def test_benchmark_against_mmdet_panoptic(tool, config):
    record = tool.main([config, '--shape', '32', '32', '--repeats', '1', '--warmup', '0',
                        '--device', 'cpu', '--outputs', 'panoptic,instance', '--compare',
                        'mmdet'])
    assert set(record['results']) == {'ours', 'mmdet'}
    assert set(record['results']['mmdet']) == {'inference'}


def test_peer_must_produce_the_requested_outputs(tool, config):
    with pytest.raises(ValueError, match='cannot produce'):
        tool.main([config, '--shape', '32', '32', '--repeats', '1', '--device', 'cpu',
                   '--outputs', 'panoptic', '--compare', 'mmseg'])


def test_benchmark_against_huggingface(tool, config):
    pytest.importorskip('transformers')
    pytest.importorskip('mmseg_maskformer.converters.huggingface')
    base = [config, '--shape', '64', '64', '--repeats', '1', '--warmup', '0', '--device', 'cpu',
            '--mode', 'both', '--compare', 'hf']
    with pytest.raises(ValueError, match='GroupNorm'):
        tool.main(base)
    # Hugging Face's pixel decoder has 32 groups: widen the tiny head to 32 channels
    # (and keep 2 x 2 pixels at stride 32, a group of one value is refused)
    pixel = 'model.decode_head.pixel_decoder.'
    record = tool.main(base + ['--cfg-options', pixel + 'num_groups=32',
                               pixel + 'feat_channels=32', pixel + 'out_channels=32',
                               'model.decode_head.transformer_decoder.embed_dims=32'])
    assert set(record['results']['hf']) == {'inference', 'train'}


def test_benchmark_against_huggingface_with_swin(tool, tmp_path):
    """Our SwinTransformerSDPA against Hugging Face's Swin (weights converted strictly)."""
    pytest.importorskip('transformers')
    pytest.importorskip('mmseg_maskformer.converters.huggingface')
    backbone = ("backbone=dict(type='SwinTransformerSDPA', embed_dims=32, depths=(2, 2, 2, 2), "
                "num_heads=(1, 2, 2, 4), window_size=7, drop_path_rate=0.0, "
                "out_indices=(0, 1, 2, 3)),")
    text = TINY_CONFIG.replace(
        "backbone=dict(type='ResNet', depth=18, base_channels=8, stem_channels=8,\n"
        "                  out_indices=(0, 1, 2, 3)),", backbone)
    text = text.replace('in_channels=[8, 16, 32, 64]', 'in_channels=[32, 64, 128, 256]')
    assert 'SwinTransformerSDPA' in text and '[32, 64, 128, 256]' in text
    path = tmp_path / 'tiny_swin.py'
    path.write_text(text)
    pixel = 'model.decode_head.pixel_decoder.'
    record = tool.main([str(path), '--shape', '64', '64', '--repeats', '1', '--warmup', '0',
                        '--device', 'cpu', '--compare', 'hf', '--cfg-options',
                        pixel + 'num_groups=32', pixel + 'feat_channels=32',
                        pixel + 'out_channels=32',
                        'model.decode_head.transformer_decoder.embed_dims=32'])
    assert set(record['results']) == {'ours', 'hf'}
    assert record['results']['hf']['inference']['median_s'] > 0


def test_malloc_keep_runs_in_its_own_process(config, tmp_path):
    """--malloc keep changes the whole process's allocator: run it in a child."""
    out = tmp_path / 'keep.json'
    subprocess.run([sys.executable, str(TOOL), config, '--shape', '32', '32', '--repeats', '1',
                    '--warmup', '0', '--device', 'cpu', '--malloc', 'keep', '--json-out',
                    str(out)], check=True, capture_output=True, text=True, timeout=300)
    record = json.loads(out.read_text())
    assert record['environment']['malloc'] == 'keep'
    assert record['results']['ours']['inference']['median_s'] > 0


def test_keep_freed_heap_is_accepted_by_glibc():
    code = ('from mmseg_maskformer.utils.benchmark import keep_freed_heap; '
            'import torch; ok = keep_freed_heap(); '
            'x = [torch.ones(2**24) for _ in range(3)]; print(ok)')  # 64 MiB blocks still work
    result = subprocess.run([sys.executable, '-c', code], check=True, capture_output=True,
                            text=True, timeout=120)
    assert result.stdout.strip() == 'True'
