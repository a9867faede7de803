"""Exact resume: SIGKILL + ``--resume`` ends bit-identical to an uninterrupted run.

Run A trains ``MAX_ITERS`` iterations without stopping. Run B, same config, is
killed with SIGKILL from outside as soon as a checkpoint of iteration
``KILL_AFTER`` exists, then resumed with ``--resume`` to ``MAX_ITERS``. Both
use random crops and flips (seeded per sample by ``SeededInfiniteSampler``),
random point sampling in the losses (restored by ``RNGStateHook``), a
dataloader worker and a validation in the middle.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import pytest
import torch

from mmseg_maskformer.datasets.synthetic import generate_synthetic_ade20k
from mmseg_maskformer.engine import load_checkpoint_safe

ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = ROOT / 'configs/mask2former/mask2former_r18-tiny_1xb4-3k_ade20k-synthetic-128x128.py'
MAX_ITERS = 8
KILL_AFTER = 3

CONFIG = """
_base_ = {base!r}
data_root = {data_root!r}
crop_size = (64, 64)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='GenerateMaskTargets'),
    dict(type='PackMaskFormerInputs'),
]
train_dataloader = dict(batch_size=2, num_workers=1, persistent_workers=False,
                        sampler=dict(type='SeededInfiniteSampler', shuffle=True),
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
model = dict(data_preprocessor=dict(size=crop_size),
             decode_head=dict(transformer_decoder=dict(num_queries=8),
                              criterion=dict(matcher=dict(num_points=64), num_points=64)))
train_cfg = dict(max_iters={max_iters}, val_interval=4)
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3))
param_scheduler = [dict(type='PolyLR', power=0.9, begin=0, end={max_iters}, by_epoch=False)]
randomness = dict(seed=0, deterministic=True)
"""


@pytest.fixture(scope='module')
def config(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp('exact_resume')
    data_root = str(root / 'synthetic_ade20k')
    generate_synthetic_ade20k(data_root, num_train=8, num_val=2, img_size=80, seed=0)
    path = root / 'exact_resume.py'
    path.write_text(CONFIG.format(base=str(DEMO_CONFIG), data_root=data_root,
                                  max_iters=MAX_ITERS))
    return str(path)


def train_env() -> Dict[str, str]:
    return dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1')


def train(config: str, work_dir: Path, *extra: str) -> None:
    proc = subprocess.run([sys.executable, 'tools/train.py', config, '--work-dir',
                           str(work_dir), *extra], cwd=ROOT, env=train_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f'{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'


def train_and_kill(config: str, work_dir: Path, checkpoint: str) -> None:
    """Starts training and SIGKILLs it once ``checkpoint`` exists."""
    proc = subprocess.Popen([sys.executable, 'tools/train.py', config, '--work-dir',
                             str(work_dir)], cwd=ROOT, env=train_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while not (work_dir / checkpoint).exists():
            assert proc.poll() is None, f'training exited before writing {checkpoint}'
            assert time.time() < deadline, f'no {checkpoint} within 240 s'
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def logged_steps(work_dir: Path) -> Dict[int, Dict[str, float]]:
    """Training scalars per iteration over all runs in ``work_dir`` (later runs win)."""
    steps: Dict[int, Dict[str, float]] = {}
    for scalars in sorted(work_dir.glob('*/vis_data/scalars.json')):
        for line in scalars.read_text().splitlines():
            record = json.loads(line)
            if 'loss' in record:
                keys = [k for k in record if 'loss' in k or k == 'lr']
                steps[record['iter']] = {k: record[k] for k in keys}
    return steps


def assert_states_equal(a, b, where: str) -> None:
    """Recursively compares nested checkpoint states exactly."""
    if torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f'{where}: {sorted(a)} != {sorted(b)}'
        for key in a:
            assert_states_equal(a[key], b[key], f'{where}.{key}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_states_equal(x, y, f'{where}[{i}]')
    else:
        assert a == b, f'{where}: {a!r} != {b!r}'


def loss_history(checkpoint: dict) -> List[float]:
    return checkpoint['message_hub']['log_scalars']['train/loss'].data[0].tolist()


@pytest.mark.slow
def test_sigkill_and_resume_is_bit_identical(config, tmp_path):
    run_a, run_b = tmp_path / 'a', tmp_path / 'b'
    train(config, run_a)
    train_and_kill(config, run_b, f'iter_{KILL_AFTER}.pth')
    assert not (run_b / f'iter_{MAX_ITERS}.pth').exists(), 'killed too late'
    resumed_from = load_checkpoint_safe((run_b / 'last_checkpoint').read_text().strip())
    assert KILL_AFTER - 1 <= resumed_from['meta']['iter'] < MAX_ITERS
    train(config, run_b, '--resume')

    final_a = load_checkpoint_safe(str(run_a / f'iter_{MAX_ITERS}.pth'))
    final_b = load_checkpoint_safe(str(run_b / f'iter_{MAX_ITERS}.pth'))
    for key in ('state_dict', 'optimizer', 'param_schedulers', 'rng_state'):
        assert_states_equal(final_a[key], final_b[key], key)
    assert loss_history(final_a) == loss_history(final_b)
    steps_a, steps_b = logged_steps(run_a), logged_steps(run_b)
    assert sorted(steps_a) == list(range(1, MAX_ITERS + 1))
    assert steps_a == steps_b
