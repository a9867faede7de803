"""AtomicCheckpointHook: a crash or SIGKILL during a save leaves the latest checkpoint intact."""
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest
import torch
from mmengine.fileio import LocalBackend
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

from mmseg_maskformer.engine import checkpoint_hook, load_checkpoint_safe
from mmseg_maskformer.engine.checkpoint_hook import TMP_SUFFIX, atomic_write_text


class ToyModel(BaseModel):

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, labels=None, mode='tensor'):
        loss = ((self.linear(inputs) - labels)**2).mean()
        return dict(loss=loss)


class ToyDataset(torch.utils.data.Dataset):

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> dict:
        return dict(inputs=torch.full((2, ), float(index)), labels=torch.ones(1))


def build_runner(work_dir: Path, max_iters: int, max_keep_ckpts: int = 1,
                 resume: bool = False) -> Runner:
    return Runner(
        resume=resume,
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(dataset=ToyDataset(), sampler=dict(type='InfiniteSampler'),
                              batch_size=2, collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False,
                                           interval=1, max_keep_ckpts=max_keep_ckpts)),
        custom_hooks=[dict(type='RNGStateHook')],
        default_scope='mmseg_maskformer')


def last_checkpoint(work_dir: Path) -> str:
    return (work_dir / 'last_checkpoint').read_text()


def temporary_files(work_dir: Path) -> list:
    return list(work_dir.glob(f'.*{TMP_SUFFIX}'))


def test_saves_rotate_and_load_safely(tmp_path):
    (tmp_path / f'.iter_9.pth{TMP_SUFFIX}').write_bytes(b'left by a killed run')
    build_runner(tmp_path, max_iters=3, max_keep_ckpts=2).train()
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['iter_2.pth', 'iter_3.pth']
    assert last_checkpoint(tmp_path) == str(tmp_path / 'iter_3.pth')
    assert temporary_files(tmp_path) == []  # the stale one was removed before training
    ckpt = load_checkpoint_safe(last_checkpoint(tmp_path))  # weights_only + allow-list
    assert ckpt['meta']['iter'] == 3
    assert torch.is_tensor(ckpt['rng_state']['torch'])


def test_crash_while_writing_keeps_previous_checkpoint(tmp_path, monkeypatch):
    put = LocalBackend.put

    def crash_on_second_checkpoint(self, obj: bytes, filepath) -> None:
        if '_2.pth' in str(filepath):
            with open(filepath, 'wb') as file:
                file.write(obj[:len(obj) // 2])
            raise OSError('disk full')
        put(self, obj, filepath)

    monkeypatch.setattr(LocalBackend, 'put', crash_on_second_checkpoint)
    with pytest.raises(OSError, match='disk full'):
        build_runner(tmp_path, max_iters=3, max_keep_ckpts=1).train()
    # with max_keep_ckpts=1, mmengine's hook deletes iter_1.pth before writing iter_2.pth
    assert not (tmp_path / 'iter_2.pth').exists()
    assert temporary_files(tmp_path) == []
    assert last_checkpoint(tmp_path) == str(tmp_path / 'iter_1.pth')
    assert load_checkpoint_safe(last_checkpoint(tmp_path))['meta']['iter'] == 1


def test_crash_while_updating_last_checkpoint_keeps_old_pointer(tmp_path, monkeypatch):
    path = tmp_path / 'last_checkpoint'
    atomic_write_text(str(path), 'iter_1.pth')

    def crash(tmp_path_: str, final_path: str) -> None:
        raise OSError('killed')

    monkeypatch.setattr(checkpoint_hook, 'commit_file', crash)
    with pytest.raises(OSError, match='killed'):
        atomic_write_text(str(path), 'iter_2.pth')
    assert path.read_text() == 'iter_1.pth'
    assert temporary_files(tmp_path) == []


def _train_with_slow_second_save(work_dir: Path) -> None:
    """Child process: the save of iteration 2 writes half its bytes, then hangs."""
    put = LocalBackend.put

    def slow_put(self, obj: bytes, filepath) -> None:
        if '_2.pth' not in str(filepath):
            return put(self, obj, filepath)
        with open(filepath, 'wb') as file:
            file.write(obj[:len(obj) // 2])
            file.flush()
            time.sleep(120)
            file.write(obj[len(obj) // 2:])

    LocalBackend.put = slow_put
    build_runner(work_dir, max_iters=3, max_keep_ckpts=1).train()


def test_sigkill_during_save_leaves_latest_loadable(tmp_path):
    child = multiprocessing.get_context('fork').Process(
        target=_train_with_slow_second_save, args=(tmp_path, ))
    child.start()
    try:
        deadline = time.time() + 60
        while not any(p.stat().st_size > 0 for p in temporary_files(tmp_path)):
            assert child.is_alive() and time.time() < deadline, 'the save never started'
            time.sleep(0.05)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join()
    assert not (tmp_path / 'iter_2.pth').exists()
    assert last_checkpoint(tmp_path) == str(tmp_path / 'iter_1.pth')
    assert load_checkpoint_safe(last_checkpoint(tmp_path))['meta']['iter'] == 1
    # a resumed run removes the partial file and finishes
    build_runner(tmp_path, max_iters=3, max_keep_ckpts=1, resume=True).train()
    assert temporary_files(tmp_path) == []
    assert load_checkpoint_safe(last_checkpoint(tmp_path))['meta']['iter'] == 3
