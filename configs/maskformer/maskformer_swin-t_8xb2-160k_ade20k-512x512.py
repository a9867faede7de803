# MaskFormer Swin-T (IN-1K, window 7, 224 pretraining), ADE20K-150 semantic, official Swin
# recipe: AdamW lr 6e-5, weight decay 0.01, backbone at the full learning rate, linear
# warm-up over 1500 iterations then linear (poly, power 1) decay. Paper: 46.7 mIoU (48.8).
_base_ = [
    './maskformer_r50_8xb2-160k_ade20k-512x512.py', '../_base_/schedules/swin_norm_keys.py'
]
# Official Swin release converted for mmseg's SwinTransformer.
pretrained = 'pretrain/swin_tiny_patch4_window7_224.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='SwinTransformer',
        pretrain_img_size=224,
        embed_dims=96,
        patch_size=4,
        window_size=7,
        mlp_ratio=4,
        depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24],
        strides=(4, 2, 2, 2),
        out_indices=(0, 1, 2, 3),
        qkv_bias=True,
        qk_scale=None,
        patch_norm=True,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.3,
        use_abs_pos_embed=False,
        act_cfg=dict(type='GELU'),
        norm_cfg=dict(type='LN'),
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[96, 192, 384, 768]))
optim_wrapper = dict(
    optimizer=dict(lr=0.00006, weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={{_base_.swin_norm_keys_full_lr}}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=160000, by_epoch=False)
]
