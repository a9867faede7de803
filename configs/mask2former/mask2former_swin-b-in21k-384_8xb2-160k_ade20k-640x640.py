# Mask2Former Swin-B (IN-21K, window 12, 384 pretraining), ADE20K-150 semantic at crop 640
# (official "res640" recipe: the R-50 solver, backbone lr x0.1, drop path 0.3; test short
# side 640). Reported: 53.9 mIoU (55.1 ms+flip).
_base_ = [
    '../_base_/models/mask2former_r50.py', '../_base_/datasets/ade20k_640x640.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_160k_swin.py'
]
# Official Swin release (swin_base_patch4_window12_384_22k.pth) converted for mmseg's Swin.
pretrained = 'pretrain/swin_base_patch4_window12_384_22k.pth'
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    backbone=dict(
        _delete_=True,
        type='SwinTransformer',
        pretrain_img_size=384,
        embed_dims=128,
        patch_size=4,
        window_size=12,
        mlp_ratio=4,
        depths=[2, 2, 18, 2],
        num_heads=[4, 8, 16, 32],
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
    decode_head=dict(num_classes={{_base_.num_classes}}, in_channels=[128, 256, 512, 1024]))
