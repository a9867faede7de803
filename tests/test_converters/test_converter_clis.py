"""The converter command lines on small synthetic files.

Two runs go through a real subprocess (a successful conversion and a malicious
pickle); the others call the scripts' ``main`` in this process, which is faster.
"""
import importlib.util
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmseg.models.backbones import ResNet
from test_detectron2_converter import to_detectron2_names

import mmseg_maskformer  # noqa: F401  (registers the models)
from mmseg_maskformer.engine.checkpoint import load_checkpoint_safe
from mmseg_maskformer.registry import MODELS

ROOT = Path(__file__).resolve().parents[2]
D2_CLI = ROOT / 'tools' / 'model_converters' / 'd22mmseg_maskformer.py'
BACKBONE_CLI = ROOT / 'tools' / 'model_converters' / 'backbone2mmseg_maskformer.py'
TINY_CONFIG = 'configs/mask2former/mask2former_r18-tiny_1xb4-3k_ade20k-synthetic-128x128.py'


def run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def run_in_process(script: Path, *args, monkeypatch, capsys):
    """Runs ``script``'s ``main()`` here; returns (exit status, stdout, stderr)."""
    spec = importlib.util.spec_from_file_location(script.stem, script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, 'argv', [str(script), *map(str, args)])
    monkeypatch.chdir(ROOT)
    status = module.main()
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    cfg = Config.fromfile(str(ROOT / TINY_CONFIG))
    return MODELS.build(cfg.model)


def write_d2_pickle(path: Path, weights) -> None:
    with open(path, 'wb') as file:  # as Detectron2 writes its model zoo files
        pickle.dump({'model': weights, '__author__': 'test', 'matching_heuristics': False},
                    file, protocol=2)


def test_d2_cli_converts_and_saves_a_loadable_checkpoint(tmp_path, tiny_model):
    src, dst = tmp_path / 'model_final.pkl', tmp_path / 'out' / 'converted.pth'
    write_d2_pickle(src, to_detectron2_names(tiny_model.state_dict()))
    proc = run(D2_CLI, src, dst, '--config', TINY_CONFIG)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'architecture: mask2former, backbone: resnet' in proc.stdout
    assert '0 unmatched source keys' in proc.stdout
    assert 'criterion.empty_weight' in proc.stdout
    checkpoint = load_checkpoint_safe(str(dst))
    assert checkpoint['meta']['converter'] == 'd22mmseg_maskformer'
    assert checkpoint['meta']['source'] == 'model_final.pkl'
    expected = {key: value for key, value in tiny_model.state_dict().items()
                if not key.endswith('num_batches_tracked')}
    assert set(checkpoint['state_dict']) == set(expected)
    for key, value in expected.items():
        assert torch.equal(checkpoint['state_dict'][key], value), key
    assert sorted(os.listdir(dst.parent)) == ['converted.pth']  # no temporary file left


def test_converted_checkpoint_works_in_test_py_and_init_model(tmp_path, tiny_model):
    """The converted file evaluates with ``tools/test.py`` exactly like the original weights."""
    from mmseg_maskformer.apis import init_model
    from mmseg_maskformer.datasets import generate_synthetic_ade20k
    data_root = tmp_path / 'ade'
    generate_synthetic_ade20k(str(data_root), num_train=1, num_val=2, img_size=64, seed=1)
    src, dst = tmp_path / 'model_final.pkl', tmp_path / 'converted.pth'
    write_d2_pickle(src, to_detectron2_names(tiny_model.state_dict()))
    assert run(D2_CLI, src, dst, '--config', TINY_CONFIG).returncode == 0
    original = tmp_path / 'original.pth'
    torch.save(dict(state_dict=tiny_model.state_dict()), original)
    loaded = init_model(TINY_CONFIG, str(dst), strict=True)
    for key, value in tiny_model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    metrics = []
    for checkpoint in (dst, original):
        proc = run('tools/test.py', TINY_CONFIG, checkpoint, '--work-dir',
                   tmp_path / f'work_{checkpoint.stem}', '--cfg-options',
                   f'test_dataloader.dataset.data_root={data_root}',
                   'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False')
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        found = re.findall(r'(aAcc|mIoU|mAcc): (\d+\.\d+)', proc.stdout + proc.stderr)
        assert found, proc.stdout[-2000:]
        metrics.append(dict(found))
    assert metrics[0] == metrics[1]


def test_d2_cli_refuses_an_inexact_conversion_unless_allowed(tmp_path, tiny_model, monkeypatch,
                                                            capsys):
    weights = to_detectron2_names(tiny_model.state_dict())
    del weights['sem_seg_head.predictor.decoder_norm.bias']
    weights['sem_seg_head.predictor.unknown_layer.weight'] = np.zeros(3, np.float32)
    src, dst = tmp_path / 'model.pkl', tmp_path / 'converted.pth'
    write_d2_pickle(src, weights)

    cli = dict(monkeypatch=monkeypatch, capsys=capsys)
    status, out, err = run_in_process(D2_CLI, src, dst, '--config', TINY_CONFIG, **cli)
    assert status == 1
    assert 'sem_seg_head.predictor.unknown_layer.weight' in out
    assert 'decode_head.predictor.decoder_norm.bias' in out
    assert 'nothing written' in err
    assert not dst.exists()

    status, out, err = run_in_process(D2_CLI, src, dst, '--config', TINY_CONFIG,
                                      '--allow-partial', **cli)
    assert status == 0, err
    assert 'partial conversion' in err
    meta = load_checkpoint_safe(str(dst))['meta']
    assert meta['unmatched'] == ['sem_seg_head.predictor.unknown_layer.weight']


class _Exploit:
    """Unpickling an instance calls ``os.system``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


@pytest.mark.parametrize('cli', ['d2', 'backbone'])
def test_clis_refuse_a_malicious_pickle(tmp_path, cli, monkeypatch, capsys):
    marker, src = tmp_path / 'marker', tmp_path / 'R-50.pkl'
    with open(src, 'wb') as file:
        pickle.dump({'model': {'stem.conv1.weight': np.zeros(1)}, 'x': _Exploit(str(marker))},
                    file)
    dst = tmp_path / 'out.pth'
    if cli == 'd2':  # in a subprocess, as a user runs it
        proc = run(D2_CLI, src, dst, '--config', TINY_CONFIG)
        status, err = proc.returncode, proc.stderr
    else:
        status, _, err = run_in_process(BACKBONE_CLI, src, dst, '--source', 'detectron2',
                                        monkeypatch=monkeypatch, capsys=capsys)
    assert status == 2
    assert 'refusing to load' in err and 'system' in err
    assert not marker.exists() and not dst.exists()


def test_backbone_cli_output_loads_through_init_cfg(tmp_path, monkeypatch, capsys):
    torch.manual_seed(1)
    source = ResNet(depth=18)
    for param in source.parameters():
        param.data.normal_()
    weights = dict(source.state_dict())
    weights.update({'fc.weight': torch.zeros(1000, 512), 'fc.bias': torch.zeros(1000)})
    src, dst = tmp_path / 'resnet18.pth', tmp_path / 'resnet18_mmseg.pth'
    torch.save(weights, src)  # torchvision files are bare state dicts
    status, out, err = run_in_process(BACKBONE_CLI, src, dst, '--source', 'torchvision',
                                      monkeypatch=monkeypatch, capsys=capsys)
    assert status == 0, out + err
    assert 'dropped on purpose: fc.weight, fc.bias' in out

    model = ResNet(depth=18, init_cfg=dict(type='Pretrained', checkpoint=str(dst)))
    model.init_weights()
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
