"""``tools/dist_train.sh CONFIG 2`` on CPU (gloo) equals one process with the whole batch.

One process trains with batch 4, two processes (``tools/dist_train.sh``) with
batch 2 each, same seed. What makes them equal: ``SeededInfiniteSampler`` gives
every step the same samples with the same augmentation seeds, the criterion
averages its mask-count normaliser and the class-weight sum of its weighted
cross-entropy (no-object weight 0.1) over the ranks, ``DistLossLogHook`` logs
the mean loss of the ranks, and the model has no batch-dependent part: frozen
BN statistics and full-mask losses instead of random points. With BN in
training mode or random points the two runs differ slightly.
Validation on 5 images split over 2 ranks (``tools/dist_test.sh``) reports the
metrics of a single-process test of the same checkpoint, whose head is biased
so that every image contributes to them: no image is dropped or counted twice.
"""
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Dict

import numpy as np
import pytest
import torch
from PIL import Image

from mmseg_maskformer.datasets.synthetic import generate_synthetic_ade20k
from mmseg_maskformer.engine.checkpoint import load_checkpoint_safe

ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = ROOT / 'configs/mask2former/mask2former_r18-tiny_1xb4-3k_ade20k-synthetic-128x128.py'
MAX_ITERS = 4
NUM_VAL = 5

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
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        sampler=dict(type='SeededInfiniteSampler', shuffle=True),
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
model = dict(data_preprocessor=dict(size=crop_size),
             backbone=dict(norm_eval=True),
             decode_head=dict(transformer_decoder=dict(num_queries=8),
                              criterion=dict(matcher=dict(num_points=0), num_points=0)))
train_cfg = dict(max_iters={max_iters}, val_interval={max_iters})
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(type='AtomicCheckpointHook', interval={max_iters}))
param_scheduler = [dict(type='PolyLR', power=0.9, begin=0, end={max_iters}, by_epoch=False)]
randomness = dict(seed=0)
"""


@pytest.fixture(scope='module')
def config(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp('distributed')
    data_root = str(root / 'synthetic_ade20k')
    generate_synthetic_ade20k(data_root, num_train=8, num_val=NUM_VAL, img_size=64, seed=0)
    path = root / 'distributed.py'
    path.write_text(CONFIG.format(base=str(DEMO_CONFIG), data_root=data_root,
                                  max_iters=MAX_ITERS))
    return str(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run(*command: str) -> str:
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1', PYTHON=sys.executable,
               PORT=str(free_port()))
    proc = subprocess.run(list(command), cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f'{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    return proc.stdout + proc.stderr


def logged(work_dir: Path) -> Dict[str, Dict[int, Dict[str, float]]]:
    """Training losses per iteration and validation metrics per step."""
    train, val = {}, {}
    for line in next(work_dir.glob('*/vis_data/scalars.json')).read_text().splitlines():
        record = json.loads(line)
        if 'loss' in record:
            train[record['iter']] = {k: v for k, v in record.items() if 'loss' in k}
        elif 'mIoU' in record:
            val[record['step']] = {k: record[k] for k in ('aAcc', 'mIoU', 'mAcc')}
    return dict(train=train, val=val)


@pytest.mark.slow
def test_two_processes_match_one(config, tmp_path):
    single, multi = tmp_path / 'single', tmp_path / 'multi'
    run(sys.executable, 'tools/train.py', config, '--work-dir', str(single))
    log = run('bash', 'tools/dist_train.sh', config, '2', '--work-dir', str(multi),
              '--cfg-options', 'train_dataloader.batch_size=2')
    assert re.search(r'world_size: 2|Distributed training: True', log), log[-2000:]

    single_log, multi_log = logged(single), logged(multi)
    assert sorted(multi_log['train']) == list(range(1, MAX_ITERS + 1))
    for step, losses in single_log['train'].items():
        assert multi_log['train'][step].keys() == losses.keys()
        for key, value in losses.items():
            assert multi_log['train'][step][key] == pytest.approx(value, rel=1e-4, abs=1e-5), \
                f'iteration {step}: {key}'

    # Each of the 5 validation images counted once (2 ranks: one pads with a repeat).
    # A 4-iteration model predicts nothing useful, so its head is biased towards the most
    # frequent validation class: every image then contributes its own share of the
    # metrics, and a dropped or doubled image changes them.
    checkpoint = biased_checkpoint(multi / f'iter_{MAX_ITERS}.pth', config, tmp_path)
    single_metrics = printed_metrics(run(sys.executable, 'tools/test.py', config, checkpoint,
                                      '--work-dir', str(tmp_path / 'test1')))
    multi_metrics = printed_metrics(run('bash', 'tools/dist_test.sh', config, checkpoint, '2',
                                     '--work-dir', str(tmp_path / 'test2')))
    assert single_metrics['aAcc'] > 0 and single_metrics['mIoU'] > 0, single_metrics
    assert multi_metrics == single_metrics


THREADS_AFTER = """
import os, runpy, sys
tool = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(tool))
runpy.run_path(tool, run_name='__main__')
tasks = os.listdir('/proc/self/task')
names = sorted(open(f'/proc/self/task/{task}/comm').read().strip() for task in tasks)
os.write(1, f'threads after the run: {names}\\n'.encode())  # one write: ranks don't interleave
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path('/proc/self/task').is_dir(), reason='needs /proc (Linux)')
def test_finished_runs_join_the_gloo_threads(config, tmp_path):
    """train.py and test.py free the gloo group before the interpreter's teardown.

    A gloo worker thread alive at teardown can abort a finished run: it
    releases the tensors of the last collective (mmengine's broadcast of the
    metrics) when Python no longer runs threads.
    """
    driver = tmp_path / 'threads_after.py'
    driver.write_text(THREADS_AFTER)
    torchrun = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2']
    work_dir = tmp_path / 'work'
    logs = [run(*torchrun, f'--master_port={free_port()}', str(driver), f'tools/{tool}.py',
                config, *args, '--launcher', 'pytorch', '--work-dir', str(work_dir))
            for tool, args in (('train', ['--cfg-options', 'train_cfg.max_iters=2',
                                          'train_cfg.val_interval=2',
                                          'default_hooks.checkpoint.interval=2']),
                               ('test', [str(work_dir / 'iter_2.pth')]))]
    for log in logs:
        assert 'aAcc' in log, log[-2000:]
        threads = re.findall(r'threads after the run: (.*)', log)
        assert len(threads) == 2, log[-2000:]
        assert all('gloo' not in names for names in threads), threads


def printed_metrics(log: str) -> Dict[str, float]:
    """aAcc / mIoU / mAcc printed by tools/test.py."""
    return {k: float(re.search(rf'{k}: (\d+\.\d+)', log).group(1))
            for k in ('aAcc', 'mIoU', 'mAcc')}


def biased_checkpoint(source: Path, config: str, tmp_path: Path) -> str:
    """The checkpoint with class logits fixed on the most frequent validation class."""
    data_root = Path(re.search(r"data_root = '([^']+)'", Path(config).read_text()).group(1))
    labels = np.concatenate([np.asarray(Image.open(p)).ravel()
                             for p in (data_root / 'annotations/validation').glob('*.png')])
    labels = labels[labels > 0].astype(np.int64) - 1  # reduce_zero_label
    frequent = int(np.bincount(labels).argmax())
    state = load_checkpoint_safe(str(source))['state_dict']
    weight = state['decode_head.predictor.class_embed.weight']
    state['decode_head.predictor.class_embed.weight'] = torch.zeros_like(weight)
    bias = torch.full_like(state['decode_head.predictor.class_embed.bias'], -10.0)
    bias[frequent] = 10.0
    state['decode_head.predictor.class_embed.bias'] = bias
    path = tmp_path / 'biased.pth'
    torch.save(dict(state_dict=state), path)
    return str(path)
