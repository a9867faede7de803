# Demo: the ADE20K recipe scaled down to train on 2 CPU cores in about 7.5 minutes.
# Changes from the parent: data root (synthetic ADE20K-layout data made by
# tools/dataset_converters/synthetic_ade20k.py), crop 128 and a lighter training
# augmentation (crop + flip: scale jitter and photometric distortion slow a
# from-scratch backbone down, measured: 16.5 vs 22.9 mIoU after 500 iterations),
# schedule (1 process x 4 images, 3k iterations, learning rate 1e-3 for the whole
# network: no pretrained backbone; measured after 1500 iterations: 1e-3 beats 5e-4
# and 2e-3) and model size (ResNet-18 at half width with trainable BN, 64-wide head,
# 20 queries, 784 points, class loss weight 10: see mask2former_demo_size.py).
# `fused=True` (one fused AdamW kernel instead of a loop over 180 tensors: 3 vs 34 ms a
# step) needs torch >= 2.4 on CPU; drop it for an older torch.
_base_ = [
    './mask2former_r50_8xb2-160k_ade20k-512x512.py',
    '../_base_/models/mask2former_demo_size.py'
]

# ---- data -------------------------------------------------------------------
data_root = 'data/synthetic_ade20k'
crop_size = (128, 128)
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='CheckedLoadAnnotations', reduce_zero_label=True),
    dict(type='CheckSegMap', num_classes={{_base_.num_classes}}),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='GenerateMaskTargets'),
    dict(type='PackMaskFormerInputs'),
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='Resize', scale=(4 * crop_size[0], crop_size[0]), keep_ratio=True),
    dict(type='CheckedLoadAnnotations', reduce_zero_label=True),
    dict(type='CheckSegMap', num_classes={{_base_.num_classes}}),
    dict(type='PackMaskFormerInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(num_workers=1, dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

# ---- model size (shared by the demos) ------------------------------------
num_points = 784  # as in demo_model (the parent sets 12544)
model = {{_base_.demo_model}}

# ---- schedule ---------------------------------------------------------------
max_iters = 3000
optim_wrapper = dict(
    optimizer=dict(lr=0.001, fused=True),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=1.0, decay_mult=1.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, begin=0, end=100, by_epoch=False),
    dict(type='PolyLR', eta_min=0, power=0.9, begin=100, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=1500)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=500, max_keep_ckpts=2))
randomness = dict(seed=0)
