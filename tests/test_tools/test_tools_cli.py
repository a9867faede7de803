"""Tests of the command-line tools (tools/train.py, tools/test.py, get_params.py).

The command-line runs start in parallel once per module (Python start-up and
imports dominate their time); the rest runs in this process on a tiny mmseg
EncoderDecoder and a two-image dataset written into a temporary folder.
"""
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Dict, Iterator, List, Tuple

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / 'tools'

TINY_CONFIG = """
default_scope = 'mmseg_maskformer'
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor', mean=[0., 0., 0.], std=[255., 255., 255.], size=(32, 32),
        pad_val=0, seg_pad_val=255),
    backbone=dict(
        type='ResNet', depth=18, stem_channels=8, base_channels=8, out_indices=(3, ),
        norm_cfg=norm_cfg),
    decode_head=dict(
        type='FCNHead', in_channels=64, in_index=0, channels=8, num_convs=1,
        concat_input=False, num_classes=3, norm_cfg=norm_cfg,
        loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
dataset = dict(
    type='BaseSegDataset', data_root='{data_root}',
    metainfo=dict(classes=('a', 'b', 'c'), palette=[[0, 0, 0], [255, 0, 0], [0, 255, 0]]),
    data_prefix=dict(img_path='img', seg_map_path='ann'), img_suffix='.jpg',
    seg_map_suffix='.png',
    pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
              dict(type='PackSegInputs')])
train_dataloader = dict(
    batch_size=2, num_workers=0, sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dataset)
test_dataloader = dict(
    batch_size=1, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dataset)
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
param_scheduler = [dict(type='PolyLR', power=0.9, begin=0, end=4, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=2)
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1),
    visualization=dict(type='SegVisualizationHook'))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
visualizer = dict(
    type='SegLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')], name='visualizer')
log_processor = dict(by_epoch=False)
"""


def _write_tiny_setup(root: Path) -> Path:
    """Writes two 32x32 images with label maps and the config; returns the config."""
    rng = np.random.default_rng(0)
    for folder in ('img', 'ann'):
        (root / 'data' / folder).mkdir(parents=True, exist_ok=True)
    for index in range(2):
        image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
        label = rng.integers(0, 3, (32, 32), dtype=np.uint8)
        Image.fromarray(image).save(root / 'data' / 'img' / f'{index}.jpg')
        Image.fromarray(label).save(root / 'data' / 'ann' / f'{index}.png')
    config = root / 'tiny_fcn.py'
    config.write_text(TINY_CONFIG.replace('{data_root}', str(root / 'data')))
    return config


def _load_tool(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def tiny_config(tmp_path_factory) -> Path:
    return _write_tiny_setup(tmp_path_factory.mktemp('tiny'))


@pytest.fixture(scope='module')
def cli(tiny_config) -> Dict[str, Tuple[int, str, str]]:
    """Runs the command lines in parallel: name -> (return code, stdout, stderr)."""
    missing = tiny_config.parent / 'missing'
    commands: Dict[str, List[str]] = {
        'train_help': ['train.py', '--help'],
        'test_help': ['test.py', '--help'],
        'get_params_help': ['analysis_tools/get_params.py', '--help'],
        'train_missing_config': ['train.py', f'{missing}.py'],
        'test_missing_checkpoint': ['test.py', str(tiny_config), f'{missing}.pth'],
    }
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(REPO), env.get('PYTHONPATH')]))
    processes = {
        name: subprocess.Popen([sys.executable, str(TOOLS / args[0]), *args[1:]],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, cwd=str(tiny_config.parent))
        for name, args in commands.items()
    }
    results = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=300)
        results[name] = (process.returncode, stdout, stderr)
    return results


@pytest.mark.parametrize('tool, flags', [
    ('train', ['--work-dir', '--resume', '--amp', '--amp-dtype', '--cfg-options', '--launcher']),
    ('test', ['--work-dir', '--out', '--show', '--show-dir', '--wait-time', '--cfg-options',
              '--launcher', '--tta']),
    ('get_params', ['--cfg-options']),
])
def test_help(cli, tool, flags):
    returncode, stdout, stderr = cli[f'{tool}_help']
    assert returncode == 0, stderr
    assert stdout.startswith('usage:')
    for flag in flags:
        assert flag in stdout


def test_train_reports_missing_config(cli, tiny_config):
    returncode, _, stderr = cli['train_missing_config']
    assert returncode == 2
    assert f'config file {tiny_config.parent / "missing"}.py does not exist' in stderr


def test_test_reports_missing_checkpoint(cli, tiny_config):
    returncode, _, stderr = cli['test_missing_checkpoint']
    assert returncode == 2
    assert f'checkpoint file {tiny_config.parent / "missing"}.pth does not exist' in stderr


def test_get_params_prints_counts(tiny_config, monkeypatch, capsys):
    get_params = _load_tool(TOOLS / 'analysis_tools' / 'get_params.py', 'get_params_tool')
    monkeypatch.setattr(sys, 'argv', ['get_params.py', str(tiny_config)])
    get_params.main()
    lines = capsys.readouterr().out.splitlines()
    total = re.fullmatch(r'Total params: (\d+\.\d{2}) M', lines[0])
    assert total, lines
    assert any(re.fullmatch(r'  backbone: \d+\.\d{2} M', line) for line in lines)
    assert any(re.fullmatch(r'  decode_head: \d+\.\d{2} M', line) for line in lines)
    assert any(re.fullmatch(r'    conv_seg: \d+\.\d{2} M', line) for line in lines)
    model = get_params.build_model(Config.fromfile(str(tiny_config)))
    expected = sum(param.numel() for param in model.parameters())
    assert total.group(1) == f'{expected / 1e6:.2f}'
    assert get_params.format_millions(44_040_000) == '44.04 M'


@pytest.fixture
def tools(monkeypatch) -> Iterator[Tuple[ModuleType, ModuleType]]:
    """tools/train.py and tools/test.py as modules (test.py imports train)."""
    monkeypatch.syspath_prepend(str(TOOLS))
    yield _load_tool(TOOLS / 'train.py', 'train'), _load_tool(TOOLS / 'test.py', 'test_tool')
    sys.modules.pop('train', None)


def _args(module: ModuleType, monkeypatch, *argv: str):
    monkeypatch.setattr(sys, 'argv', ['tool.py', *argv])
    return module.parse_args()


def test_train_options(tools, tiny_config, tmp_path, monkeypatch):
    train, _ = tools
    monkeypatch.chdir(tmp_path)
    cfg = train.build_cfg(_args(train, monkeypatch, str(tiny_config), '--resume'))
    assert cfg.work_dir == os.path.join('./work_dirs', 'tiny_fcn')
    assert cfg.resume is True and cfg.load_from is None
    assert cfg.default_scope == 'mmseg_maskformer'
    checkpoint = tmp_path / 'iter_1.pth'
    checkpoint.touch()
    cfg = train.build_cfg(
        _args(train, monkeypatch, str(tiny_config), '--resume', str(checkpoint), '--work-dir',
              'elsewhere', '--cfg-options', 'train_cfg.max_iters=7'))
    assert (cfg.resume, cfg.load_from, cfg.work_dir) == (True, str(checkpoint), 'elsewhere')
    assert cfg.train_cfg.max_iters == 7
    with pytest.raises(SystemExit, match='does not exist'):
        train.build_cfg(_args(train, monkeypatch, str(tiny_config), '--resume', 'nope.pth'))


def test_train_amp_option(tools, tiny_config, monkeypatch):
    import torch
    train, _ = tools
    args = _args(train, monkeypatch, str(tiny_config), '--amp')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = train.build_cfg(args)
    assert cfg.optim_wrapper.type == 'AutocastOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'bfloat16'
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    cfg = train.build_cfg(args)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'float16'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'


def test_test_options(tools, tiny_config, tmp_path, monkeypatch):
    _, test = tools
    checkpoint = tmp_path / 'iter_2.pth'
    checkpoint.touch()
    args = _args(test, monkeypatch, str(tiny_config), str(checkpoint), '--out', 'preds',
                 '--show-dir', 'vis')
    cfg = test.build_cfg(args)
    assert cfg.load_from == str(checkpoint) and cfg.resume is False
    hook = cfg.default_hooks.visualization
    assert (hook.draw, hook.interval) == (True, 1)
    # A relative --show-dir lands inside the work dir, an absolute one stays.
    assert cfg.visualizer.save_dir == os.path.join('./work_dirs', 'tiny_fcn', 'vis')
    assert cfg.test_evaluator.output_dir == 'preds'
    assert not cfg.test_evaluator.get('format_only', False)  # metrics are still computed
    args = _args(test, monkeypatch, str(tiny_config), str(checkpoint), '--show-dir',
                 str(tmp_path / 'vis'), '--work-dir', 'elsewhere')
    assert test.build_cfg(args).visualizer.save_dir == str(tmp_path / 'vis')


def test_out_and_format_only_reach_every_metric(tools, tiny_config, tmp_path, monkeypatch):
    """COCO metrics get an outfile prefix, semantic ones an output dir."""
    _, test = tools
    checkpoint = tmp_path / 'iter_2.pth'
    checkpoint.touch()
    config = tmp_path / 'three_metrics.py'
    config.write_text(f"_base_ = [{str(tiny_config)!r}]\n"
                      "test_evaluator = [dict(type='IoUMetric'), dict(type='CocoInstanceMetric', "
                      "ann_file='a.json'), dict(type='PanopticQualityMetric')]\n")
    args = _args(test, monkeypatch, str(config), str(checkpoint), '--out', 'preds',
                 '--format-only')
    iou, instance, panoptic = test.build_cfg(args).test_evaluator
    assert iou.output_dir == 'preds'
    assert instance.outfile_prefix == os.path.join('preds', 'CocoInstanceMetric')
    assert panoptic.outfile_prefix == os.path.join('preds', 'PanopticQualityMetric')
    assert iou.format_only and instance.format_only and panoptic.format_only
    with pytest.raises(SystemExit):
        _args(test, monkeypatch, str(tiny_config), str(checkpoint), '--format-only')


@pytest.mark.slow
def test_train_resume_and_test_end_to_end(tools, tiny_config, tmp_path, monkeypatch):
    """Two iterations, resume to three, then test with --out and --show-dir."""
    train, test = tools
    work_dir = tmp_path / 'work'

    def run(module: ModuleType, name: str, *argv: str) -> None:
        # A distinct experiment name keeps mmengine's per-name singletons apart.
        _args(module, monkeypatch, str(tiny_config), *argv, '--work-dir', str(work_dir),
              '--cfg-options', f'experiment_name={name}', f'visualizer.name={name}')
        module.main()

    run(train, 'e2e_train')
    assert (work_dir / 'iter_2.pth').is_file()
    run(train, 'e2e_resume', '--resume', '--amp', '--cfg-options', 'train_cfg.max_iters=3')
    assert (work_dir / 'iter_3.pth').is_file()
    assert 'iter_3.pth' in (work_dir / 'last_checkpoint').read_text()

    run(test, 'e2e_test', str(work_dir / 'iter_3.pth'), '--out', str(tmp_path / 'preds'),
        '--show-dir', str(tmp_path / 'vis'))
    assert sorted(p.name for p in (tmp_path / 'preds').iterdir()) == ['0.png', '1.png']
    pictures = sorted((tmp_path / 'vis').rglob('*.png'))
    assert len(pictures) == 2, pictures


def test_close_distributed_destroys_a_started_group(tools, tmp_path):
    import torch.distributed as torch_dist
    train, _ = tools
    train.close_distributed()  # no group: nothing to do
    torch_dist.init_process_group('gloo', init_method=f'file://{tmp_path / "store"}', rank=0,
                                  world_size=1)
    assert torch_dist.is_initialized()
    train.close_distributed()
    assert not torch_dist.is_initialized()
