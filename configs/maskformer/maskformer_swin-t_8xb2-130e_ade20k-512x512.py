# MaskFormer Swin-T (IN-1K, window 7, 224 pretraining), ADE20K-150 semantic with the recipe of
# sssegmentation's MaskFormer zoo: batch 16, crop 512, 130 epochs, AdamW lr 6e-5, poly
# (power 1) after a 1500-iteration warm-up, mmseg-style ratio-range augmentation. The model is
# the official MaskFormer (FPN pixel decoder with GroupNorm, 256 channels); sssegmentation's
# own uses a PPM + FPN pixel decoder with BatchNorm at 512 channels, not reproduced here.
# sssegmentation: 47.31 mIoU.
_base_ = [
    '../_base_/models/maskformer_r50.py', '../_base_/datasets/ade20k_ratio_resize.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_130e_ade20k.py'
]
# Official Swin release converted for mmseg's SwinTransformer.
pretrained = 'pretrain/swin_tiny_patch4_window7_224.pth'
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
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
    decode_head=dict(num_classes={{_base_.num_classes}}, in_channels=[96, 192, 384, 768]))
