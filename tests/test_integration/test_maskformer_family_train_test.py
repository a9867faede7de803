"""MaskFormer and the per-pixel baselines train a few iterations and test on CPU.

Each official ADE20K R-50 config is shrunk (tiny ResNet, narrow head, 2 decoder layers)
and pointed at a tiny synthetic ADE20K-layout dataset; ``tools/train.py`` trains 2
iterations and ``tools/test.py`` evaluates the checkpoint (mIoU table).
"""
import re
from pathlib import Path

import pytest

from mmseg_maskformer.datasets.synthetic import generate_synthetic_ade20k

from test_train_resume_test import ROOT, run_tool  # same folder, on sys.path

TINY = """
_base_ = {base!r}
data_root = {data_root!r}
crop_size = (64, 64)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='GenerateMaskTargets'),
    dict(type='PackMaskFormerInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackMaskFormerInputs'),
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(depth=18, base_channels=8, stem_channels=8, init_cfg=None,
                  norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False),
    decode_head=dict(
        in_channels=[8, 16, 32, 64],
        pixel_decoder=dict(feat_channels=16, out_channels=16, num_groups=4),
        transformer_decoder=dict(embed_dims=16, num_heads=2, num_layers=2,
                                 feedforward_dims=32{extra_decoder})))
train_cfg = dict(max_iters=2, val_interval=1000)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
param_scheduler = [dict(type='PolyLR', power=0.9, begin=0, end=2, by_epoch=False)]
"""

CONFIGS = {
    'maskformer_r50_8xb2-160k_ade20k-512x512.py': ', num_queries=4',
    'per-pixel-baseline_r50_8xb2-160k_ade20k-512x512.py': None,
    'per-pixel-baseline-plus_r50_8xb2-160k_ade20k-512x512.py': '',
}


@pytest.fixture(scope='module')
def dataset(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('data') / 'synthetic_ade20k')
    generate_synthetic_ade20k(root, num_train=4, num_val=2, img_size=64, seed=0)
    return root


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_trains_and_tests(name, dataset, tmp_path):
    text = TINY.format(base=str(ROOT / 'configs' / 'maskformer' / name), data_root=dataset,
                       extra_decoder=CONFIGS[name] or '')
    if CONFIGS[name] is None:  # the plain baseline has no transformer decoder
        text = text.replace(
            ',\n        transformer_decoder=dict(embed_dims=16, num_heads=2, num_layers=2,\n'
            '                                 feedforward_dims=32)', '')
        assert 'transformer_decoder' not in text
    config = tmp_path / 'tiny.py'
    config.write_text(text)
    work_dir = str(tmp_path / 'work')
    proc = run_tool('tools/train.py', str(config), '--work-dir', work_dir)
    assert re.search(r'Iter\(train\) \[2/2\].*loss: \d', proc.stdout + proc.stderr)
    proc = run_tool('tools/test.py', str(config), f'{work_dir}/iter_2.pth', '--work-dir',
                    work_dir)
    assert re.search(r'mIoU: \d', proc.stdout + proc.stderr)
    assert Path(work_dir, 'iter_2.pth').is_file()
