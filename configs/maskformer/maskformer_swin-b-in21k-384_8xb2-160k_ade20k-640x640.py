# MaskFormer Swin-B (IN-21K, window 12, 384 pretraining), ADE20K-150 semantic at crop 640,
# official Swin recipe (see the Swin-T config). Paper: 52.7 mIoU (53.9 ms+flip).
_base_ = [
    '../_base_/models/maskformer_r50.py', '../_base_/datasets/ade20k_640x640.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_160k.py',
    '../_base_/schedules/swin_norm_keys.py',
    '../_base_/models/swin_backbones.py'
]
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    backbone={{_base_.swin_b_384_in21k}},
    decode_head=dict(num_classes={{_base_.num_classes}}, in_channels=[128, 256, 512, 1024]))
optim_wrapper = dict(
    optimizer=dict(lr=0.00006, weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={{_base_.swin_norm_keys_full_lr}}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=160000, by_epoch=False)
]
