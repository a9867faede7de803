"""Tests of safe checkpoint loading (mmseg_maskformer.engine.checkpoint)."""
import os
import pickle
import shutil
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint
from torch import nn
from torch.utils.data import Dataset

from mmseg_maskformer.engine import checkpoint as ckpt_module
from mmseg_maskformer.engine import (UnsafeCheckpointError, load_checkpoint_safe,
                                     load_pickle_safe, register_safe_globals, safe_globals)


class _TinyDataset(Dataset):
    """Eight random (input, target) pairs with a dataset metainfo."""

    metainfo = dict(classes=('a', 'b'), palette=[[0, 0, 0], [255, 255, 255]])

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        generator = torch.Generator().manual_seed(index)
        return dict(inputs=torch.randn(3, generator=generator),
                    data_samples=torch.randn(1, generator=generator))


class _TinyModel(BaseModel):
    """A linear regressor with the BaseModel interface."""

    def __init__(self, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.linear = nn.Linear(3, 1)

    def forward(self, inputs: torch.Tensor, data_samples: Any = None, mode: str = 'tensor'):
        out = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=((out - data_samples)**2).mean())
        return out


class _CountIters(Hook):
    """Counts the training iterations a runner actually runs."""

    def __init__(self) -> None:
        self.count = 0

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.count += 1


def _runner(work_dir: Path, max_iters: int, name: str, **kwargs) -> Runner:
    return Runner(
        model=_TinyModel(),
        work_dir=str(work_dir),
        experiment_name=name,
        train_dataloader=dict(
            dataset=_TinyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate'),
            batch_size=2,
            num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        param_scheduler=dict(type='PolyLR', by_epoch=False, eta_min=1e-4, power=0.9),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False)),
        randomness=dict(seed=0),
        default_scope='mmengine',
        **kwargs)


@pytest.fixture(scope='module')
def runner_ckpt(tmp_path_factory) -> Path:
    """A checkpoint saved by CheckpointHook after two training iterations."""
    work_dir = tmp_path_factory.mktemp('train')
    _runner(work_dir, max_iters=2, name='ckpt_save').train()
    path = work_dir / 'iter_2.pth'
    assert path.is_file()
    return path


class _Exploit:
    """Runs a shell command when unpickled by an unrestricted unpickler."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Tuple[Any, tuple]:
        return os.system, (f'touch {self.marker}', )


class _ExecExploit(_Exploit):
    """Runs Python code when unpickled by an unrestricted unpickler."""

    def __reduce__(self) -> Tuple[Any, tuple]:
        return exec, (f'open({str(self.marker)!r}, "w").close()', )


class _GetattrExploit:
    """Asks the restricted getattr for something else than a statistic method."""

    def __reduce__(self) -> Tuple[Any, tuple]:
        return getattr, (HistoryBuffer, '__init__')


def test_allow_list_is_named_and_narrow():
    names = [name for _, name in safe_globals()]
    assert len(names) == len(set(names))
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in names
    assert 'numpy._core.multiarray._reconstruct' in names
    assert 'numpy.core.multiarray._reconstruct' in names
    # builtins.getattr is served by a stand-in, never by the real getattr.
    objects = dict((name, obj) for obj, name in safe_globals())
    assert objects['builtins.getattr'] is not getattr
    for name in ('os.system', 'builtins.exec', 'builtins.eval', 'subprocess.Popen'):
        assert name not in names


def test_register_is_idempotent():
    register_safe_globals()
    register_safe_globals()
    user_globals = torch.serialization.get_safe_globals()
    assert len(user_globals) == len(set(user_globals))
    for _, name in safe_globals():
        assert any(isinstance(g, tuple) and g[1] == name for g in user_globals)


@pytest.mark.parametrize('path, loader', [
    ('work_dirs/iter_2.pth', 'load_from_local'),
    ('https://example.com/r50.pth', 'load_from_http'),
    ('http://example.com/r50.pth', 'load_from_http'),
    ('torchvision://resnet50', 'load_from_torchvision'),
    ('modelzoo://resnet50', 'load_from_torchvision'),
    ('open-mmlab://resnet50_v1c', 'load_from_openmmlab'),
    ('openmmlab://resnet50_v1c', 'load_from_openmmlab'),
    ('mmcls://resnet50', 'load_from_mmcls'),
    ('s3://bucket/r50.pth', 'load_from_ceph'),
    ('pavi://model', 'load_from_pavi'),
])
def test_every_mmengine_scheme_uses_a_safe_loader(path, loader):
    assert CheckpointLoader._get_checkpoint_loader(path) is getattr(ckpt_module, loader)


def test_runner_checkpoint_loads_with_weights_only(runner_ckpt):
    # Everything the checkpoint refers to is allow-listed ...
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(runner_ckpt)) == []
    # ... so torch's restricted unpickler rebuilds it.
    ckpt = torch.load(runner_ckpt, map_location='cpu', weights_only=True)
    assert set(ckpt) >= {'meta', 'state_dict', 'message_hub', 'optimizer', 'param_schedulers'}
    loss = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(loss, HistoryBuffer)
    assert loss.data[0].shape == (2, )
    assert np.isfinite(loss.mean())
    assert isinstance(ckpt['message_hub']['runtime_info']['eta'], np.floating)
    # mmengine's own loader and our helper give the same checkpoint.
    for loaded in (_load_checkpoint(str(runner_ckpt), map_location='cpu'),
                   load_checkpoint_safe(str(runner_ckpt))):
        assert torch.equal(loaded['state_dict']['linear.weight'],
                           ckpt['state_dict']['linear.weight'])


def test_runner_resumes_from_checkpoint(runner_ckpt, tmp_path):
    shutil.copy(runner_ckpt, tmp_path / 'iter_2.pth')
    counter = _CountIters()
    runner = _runner(
        tmp_path, max_iters=3, name='ckpt_resume', resume=True,
        load_from=str(tmp_path / 'iter_2.pth'), custom_hooks=[counter])
    runner.train()
    assert counter.count == 1  # iterations 1-2 came from the checkpoint
    assert runner.iter == 3
    assert len(runner.message_hub.get_scalar('train/loss').data[0]) == 3


def test_runner_resume_method(runner_ckpt, tmp_path):
    runner = _runner(tmp_path, max_iters=2, name='ckpt_resume_method')
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner.param_schedulers = runner.build_param_scheduler(runner.param_schedulers)
    runner.resume(str(runner_ckpt))
    saved = torch.load(runner_ckpt, weights_only=True)
    assert runner.iter == 2
    assert len(runner.message_hub.get_scalar('train/loss').data[0]) == 2
    assert (runner.optim_wrapper.param_groups[0]['lr'] ==
            saved['optimizer']['param_groups'][0]['lr'])


def test_init_cfg_pretrained_goes_through_allow_list(runner_ckpt, tmp_path):
    model = _TinyModel(init_cfg=dict(type='Pretrained', checkpoint=str(runner_ckpt)))
    model.init_weights()
    saved = torch.load(runner_ckpt, weights_only=True)['state_dict']
    assert torch.equal(model.linear.weight, saved['linear.weight'])

    marker = tmp_path / 'exploited'
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': saved, 'meta': _Exploit(marker)}, evil)
    model = _TinyModel(init_cfg=dict(type='Pretrained', checkpoint=str(evil)))
    with pytest.raises(UnsafeCheckpointError, match='refusing to load'):
        model.init_weights()
    assert not marker.exists()


def _save_exploits(tmp_path: Path, exploit: Any) -> Dict[str, Path]:
    """Writes ``exploit`` as a torch zip file, a legacy pickle .pth and a .pkl."""
    paths = {
        'torch_zip': tmp_path / 'zip.pth',
        'pickle_pth': tmp_path / 'plain.pth',
        'pickle_pth_v5': tmp_path / 'plain_v5.pth',
        'pkl': tmp_path / 'weights.pkl',
    }
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': exploit}, paths['torch_zip'])
    with open(paths['pickle_pth'], 'wb') as file:
        pickle.dump({'state_dict': exploit}, file, protocol=2)
    with open(paths['pickle_pth_v5'], 'wb') as file:
        pickle.dump({'state_dict': exploit}, file, protocol=5)
    with open(paths['pkl'], 'wb') as file:
        pickle.dump({'model': {'w': np.zeros(1)}, 'x': exploit}, file)
    return paths


@pytest.mark.filterwarnings('ignore:Detected pickle protocol')
@pytest.mark.parametrize('exploit_cls, global_name', [
    (_Exploit, os.system.__module__ + '.system'),
    (_ExecExploit, 'builtins.exec'),
])
@pytest.mark.parametrize('kind', ['torch_zip', 'pickle_pth', 'pickle_pth_v5', 'pkl'])
def test_malicious_files_are_refused(tmp_path, exploit_cls, global_name, kind):
    marker = tmp_path / 'exploited'
    path = _save_exploits(tmp_path, exploit_cls(marker))[kind]
    for load in (load_checkpoint_safe, _load_checkpoint):
        with pytest.raises(UnsafeCheckpointError) as error:
            load(str(path))
        message = str(error.value)
        assert f'refusing to load {path}' in message
        assert global_name in message
        assert 'allow-list' in message
        assert not marker.exists()


def test_malicious_pkl_refused_by_pickle_loader(tmp_path):
    marker = tmp_path / 'exploited'
    path = _save_exploits(tmp_path, _Exploit(marker))['pkl']
    with pytest.raises(pickle.UnpicklingError, match='refusing to load .*weights.pkl'):
        load_pickle_safe(str(path))
    assert not marker.exists()


def test_getattr_only_serves_history_buffer_statistics(tmp_path):
    path = tmp_path / 'getattr.pth'
    torch.save({'meta': _GetattrExploit()}, path)
    with pytest.raises(UnsafeCheckpointError, match='getattr'):
        load_checkpoint_safe(str(path))


def _d2_weights() -> Dict[str, Any]:
    rng = np.random.default_rng(0)
    return {
        'model': OrderedDict([
            ('stem.conv1.weight', rng.standard_normal((8, 3, 7, 7)).astype(np.float32)),
            ('stem.conv1.norm.running_mean', np.zeros(8, dtype=np.float32)),
            ('res2.0.conv1.norm.num_batches_tracked', np.int64(3)),
        ]),
        '__author__': 'Detectron2 Model Zoo',
        'matching_heuristics': True,
    }


@pytest.mark.parametrize('protocol', [2, 4, 5])
def test_detectron2_pkl_loads(tmp_path, protocol):
    weights = _d2_weights()
    path = tmp_path / 'model_final.pkl'
    with open(path, 'wb') as file:
        pickle.dump(weights, file, protocol=protocol)
    for load in (load_pickle_safe, load_checkpoint_safe, _load_checkpoint):
        loaded = load(str(path))
        assert loaded['__author__'] == weights['__author__']
        assert loaded['matching_heuristics'] is True
        for key, value in weights['model'].items():
            np.testing.assert_array_equal(loaded['model'][key], value)
            assert loaded['model'][key].dtype == value.dtype


def test_numpy1_pickles_load(tmp_path):
    """Files written with numpy 1.x name ``numpy.core`` instead of ``numpy._core``."""
    array = np.arange(6, dtype=np.float64).reshape(2, 3)
    data = pickle.dumps({'model': {'w': array}, 'eta': np.float64(1.5)}, protocol=2)
    data = data.replace(b'numpy._core.multiarray', b'numpy.core.multiarray')
    assert b'numpy.core.multiarray\n_reconstruct' in data
    path = tmp_path / 'numpy1.pkl'
    path.write_bytes(data)
    loaded = load_pickle_safe(str(path))
    np.testing.assert_array_equal(loaded['model']['w'], array)
    assert loaded['eta'] == 1.5

    # A legacy (non-zip) torch file holding numpy values, as mmengine wrote it.
    legacy = tmp_path / 'numpy1_legacy.pth'
    torch.save({'meta': {'eta': np.float64(1.5), 'hist': array}}, legacy,
               _use_new_zipfile_serialization=False)
    legacy.write_bytes(legacy.read_bytes().replace(b'numpy._core.multiarray',
                                                   b'numpy.core.multiarray'))
    loaded = load_checkpoint_safe(str(legacy))
    np.testing.assert_array_equal(loaded['meta']['hist'], array)


def test_http_scheme_downloads_and_loads_safely(tmp_path, monkeypatch, runner_ckpt):
    sources = _save_exploits(tmp_path, _Exploit(tmp_path / 'exploited'))
    sources['good'] = runner_ckpt

    def fake_download(url: str, dst: str, *args, **kwargs) -> None:
        shutil.copy(sources[Path(url).stem], dst)

    monkeypatch.setattr(torch.hub, 'download_url_to_file', fake_download)
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    loaded = _load_checkpoint('https://example.com/good.pth', map_location='cpu')
    assert 'state_dict' in loaded
    with pytest.raises(UnsafeCheckpointError, match='refusing to load'):
        _load_checkpoint('https://example.com/torch_zip.pth')
    assert not (tmp_path / 'exploited').exists()


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        load_checkpoint_safe(str(tmp_path / 'missing.pth'))
    with pytest.raises(FileNotFoundError, match='missing.pkl'):
        load_pickle_safe(str(tmp_path / 'missing.pkl'))
