"""End to end on CPU: train a few iterations, kill, resume, test a checkpoint.

Drives ``tools/train.py`` and ``tools/test.py`` as a user does, on a tiny
synthetic ADE20K-layout dataset and a tiny variant of the demo config.
"""
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mmseg_maskformer.datasets.synthetic import generate_synthetic_ade20k

ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = ROOT / 'configs/mask2former/mask2former_r18-tiny_1xb4-3k_ade20k-synthetic-128x128.py'
NUM_VAL = 3

TINY_CONFIG = """
_base_ = {base!r}
data_root = {data_root!r}
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
model = dict(decode_head=dict(transformer_decoder=dict(num_queries=8)))
train_cfg = dict(max_iters={max_iters}, val_interval=1000)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2, max_keep_ckpts=10))
param_scheduler = [dict(type='PolyLR', power=0.9, begin=0, end={max_iters}, by_epoch=False)]
"""


@pytest.fixture(scope='module')
def dataset(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('data') / 'synthetic_ade20k')
    generate_synthetic_ade20k(root, num_train=8, num_val=NUM_VAL, img_size=96, seed=0)
    return root


def write_config(path: Path, data_root: str, max_iters: int) -> str:
    path.write_text(TINY_CONFIG.format(base=str(DEMO_CONFIG), data_root=data_root,
                                       max_iters=max_iters))
    return str(path)


def run_tool(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f'{args[0]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    return proc


def checkpoint_iter(path: str) -> int:
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    return int(ckpt['meta']['iter'])


@pytest.mark.slow
def test_train_resume_and_test(dataset, tmp_path):
    work_dir = str(tmp_path / 'work')
    config = write_config(tmp_path / 'tiny.py', dataset, max_iters=4)
    run_tool('tools/train.py', config, '--work-dir', work_dir)
    assert checkpoint_iter(osp.join(work_dir, 'iter_4.pth')) == 4
    assert Path(work_dir, 'last_checkpoint').read_text().strip().endswith('iter_4.pth')

    # a longer schedule resumes from iteration 4 instead of starting again
    config = write_config(tmp_path / 'tiny.py', dataset, max_iters=6)
    proc = run_tool('tools/train.py', config, '--work-dir', work_dir, '--resume')
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 0, iter: 4' in log
    assert 'Iter(train) [5/6]' in log and 'Iter(train) [1/6]' not in log
    assert checkpoint_iter(osp.join(work_dir, 'iter_6.pth')) == 6

    # test the final checkpoint: mIoU table and one overlay picture per image
    proc = run_tool('tools/test.py', config, osp.join(work_dir, 'iter_6.pth'), '--work-dir',
                    work_dir, '--show-dir', 'vis')
    log = proc.stdout + proc.stderr
    assert re.search(r'mIoU: \d+\.\d+', log), log[-2000:]
    pictures = [p for p in Path(work_dir).rglob('*.png') if 'vis' in p.parts]
    assert len(pictures) == NUM_VAL, pictures


@pytest.mark.slow
def test_sigkill_then_resume_continues_from_last_checkpoint(dataset, tmp_path):
    work_dir = tmp_path / 'work'
    config = write_config(tmp_path / 'tiny.py', dataset, max_iters=200)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1')
    proc = subprocess.Popen([sys.executable, 'tools/train.py', config, '--work-dir',
                             str(work_dir)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while not (work_dir / 'iter_4.pth').exists():
            assert proc.poll() is None, 'training exited before writing iter_4.pth'
            assert time.time() < deadline, 'no checkpoint within 240 s'
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    last = (work_dir / 'last_checkpoint').read_text().strip()
    last_iter = checkpoint_iter(last)  # the file named "latest" loads: not corrupt
    assert last_iter >= 4 and last_iter < 200

    config = write_config(tmp_path / 'tiny.py', dataset, max_iters=last_iter + 2)
    proc = run_tool('tools/train.py', config, '--work-dir', str(work_dir), '--resume')
    log = proc.stdout + proc.stderr
    assert f'resumed epoch: 0, iter: {last_iter}' in log
    assert checkpoint_iter(str(work_dir / f'iter_{last_iter + 2}.pth')) == last_iter + 2


@pytest.mark.slow
def test_wrong_num_classes_fails_before_training(dataset, tmp_path):
    """The default NumClassesCheckHook stops the run with the fix in the message."""
    config = write_config(tmp_path / 'tiny.py', dataset, max_iters=2)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', config, '--work-dir', str(tmp_path / 'work'),
         '--cfg-options', 'model.decode_head.num_classes=100'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert 'num_classes=100 but the train dataset ADE20KDataset has 150 classes' in proc.stderr
    assert not list((tmp_path / 'work').glob('*.pth'))  # nothing was trained
