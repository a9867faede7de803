# MaskFormer Swin-T (IN-1K, window 7, 224 pretraining), ADE20K-150 semantic, official Swin
# recipe: AdamW lr 6e-5, weight decay 0.01, backbone at the full learning rate, linear
# warm-up over 1500 iterations then linear (poly, power 1) decay. Paper: 46.7 mIoU (48.8).
_base_ = [
    './maskformer_r50_8xb2-160k_ade20k-512x512.py', '../_base_/schedules/swin_norm_keys.py',
    '../_base_/models/swin_backbones.py'
]
# Official Swin release converted for mmseg's SwinTransformer.
model = dict(
    backbone={{_base_.swin_t}},
    decode_head=dict(in_channels=[96, 192, 384, 768]))
optim_wrapper = dict(
    optimizer=dict(lr=0.00006, weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={{_base_.swin_norm_keys_full_lr}}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=160000, by_epoch=False)
]
