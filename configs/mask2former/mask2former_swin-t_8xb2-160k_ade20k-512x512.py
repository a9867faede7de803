# Mask2Former Swin-T (IN-1K, window 7, 224 pretraining), ADE20K-150 semantic, 160k iterations.
# Paper: 47.7 mIoU (single scale), 47M parameters.
_base_ = [
    './mask2former_r50_8xb2-160k_ade20k-512x512.py', '../_base_/schedules/swin_norm_keys.py'
]
# Official Swin release (swin_tiny_patch4_window7_224.pth) converted for mmseg's SwinTransformer.
pretrained = 'pretrain/swin_tiny_patch4_window7_224.pth'
depths = [2, 2, 6, 2]
model = dict(
    backbone=dict(
        _delete_=True,
        type='SwinTransformer',
        pretrain_img_size=224,
        embed_dims=96,
        patch_size=4,
        window_size=7,
        mlp_ratio=4,
        depths=depths,
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
        with_cp=False,
        frozen_stages=-1,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[96, 192, 384, 768]))
# no weight decay on Swin's norms (swin_norm_keys.py) and position tables (the schedule)
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={{_base_.swin_norm_keys}}))
