"""100 iterations of bf16-autocast training on CPU keep every loss finite.

mmengine's ``AmpOptimWrapper`` refuses to run without an accelerator, so the
run uses our ``AutocastOptimWrapper`` (bf16 autocast on the model's device).
The official Mask2Former ADE20K config is shrunk (tiny ResNet-18, 16-wide head,
64x64 synthetic images, batch 2) and trained with ``tools/train.py``; every
loss of every iteration in the JSON log must be finite.
"""
import json
import math
from pathlib import Path

import pytest

from mmseg_maskformer.datasets.synthetic import generate_synthetic_ade20k

from test_train_resume_test import ROOT, run_tool  # same folder, on sys.path

ITERS = 100

TINY_BF16 = """
_base_ = {base!r}
data_root = {data_root!r}
crop_size = (64, 64)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='CheckSegMap', num_classes=150),
    dict(type='RandomFlip', prob=0.5),
    dict(type='GenerateMaskTargets'),
    dict(type='PackMaskFormerInputs'),
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = None
val_evaluator = None
val_cfg = None
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(depth=18, base_channels=8, stem_channels=8, init_cfg=None,
                  norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False),
    decode_head=dict(
        in_channels=[8, 16, 32, 64],
        pixel_decoder=dict(feat_channels=16, out_channels=16, num_encoder_layers=1,
                           num_heads=2, feedforward_dims=32, num_groups=4),
        transformer_decoder=dict(embed_dims=16, num_queries=8, num_heads=2, num_layers=2,
                                 feedforward_dims=32),
        criterion=dict(matcher=dict(num_points=64), num_points=64)))
optim_wrapper = dict(_delete_=True, type='AutocastOptimWrapper', dtype='bfloat16',
                     optimizer=dict(type='AdamW', lr=0.001, weight_decay=0.05),
                     clip_grad=dict(max_norm=0.01, norm_type=2))
train_cfg = dict(type='IterBasedTrainLoop', max_iters={iters}, val_interval={iters} + 1)
param_scheduler = [dict(type='PolyLR', power=0.9, begin=0, end={iters}, by_epoch=False)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval={iters}))
randomness = dict(seed=0)
"""


@pytest.mark.slow
def test_bf16_training_keeps_losses_finite(tmp_path):
    data_root = str(tmp_path / 'synthetic_ade20k')
    generate_synthetic_ade20k(data_root, num_train=8, num_val=1, img_size=64, seed=0)
    base = ROOT / 'configs' / 'mask2former' / 'mask2former_r50_8xb2-160k_ade20k-512x512.py'
    config = tmp_path / 'tiny_bf16.py'
    config.write_text(TINY_BF16.format(base=str(base), data_root=data_root, iters=ITERS))
    work_dir = tmp_path / 'work'
    run_tool('tools/train.py', str(config), '--work-dir', str(work_dir), timeout=240)

    dumped = (work_dir / 'tiny_bf16.py').read_text()  # the config the run used
    assert "type='AutocastOptimWrapper'" in dumped and "dtype='bfloat16'" in dumped
    logs = list(work_dir.glob('*/vis_data/scalars.json'))
    assert len(logs) == 1, logs
    records = [json.loads(line) for line in logs[0].read_text().splitlines()]
    train = [r for r in records if 'loss' in r]
    assert [r['iter'] for r in train] == list(range(1, ITERS + 1))
    for record in train:
        losses = {k: v for k, v in record.items() if k == 'loss' or 'loss_' in k}
        assert len(losses) == 1 + 3 * 3  # total + cls/mask/dice of 3 prediction layers
        bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
        assert not bad, f'iteration {record["iter"]}: non-finite {bad}'
    assert Path(work_dir, f'iter_{ITERS}.pth').is_file()
