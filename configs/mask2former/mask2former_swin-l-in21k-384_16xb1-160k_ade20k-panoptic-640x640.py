# Mask2Former Swin-L (IN-21K, window 12, 384 pretraining), ADE20K panoptic at crop 640,
# 200 queries, 16 GPUs x 1 image (batch 16, as the official Swin-L models), 160k iterations.
# Reported from one model: PQ 48.1, mask AP 34.2, mIoU 54.5.
_base_ = [
    '../_base_/models/mask2former_r50.py', '../_base_/datasets/ade20k_panoptic.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_160k_swin.py'
]
pretrained = 'pretrain/swin_large_patch4_window12_384_22k.pth'
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    backbone=dict(
        _delete_=True,
        type='SwinTransformer',
        pretrain_img_size=384,
        embed_dims=192,
        patch_size=4,
        window_size=12,
        mlp_ratio=4,
        depths=[2, 2, 18, 2],
        num_heads=[6, 12, 24, 48],
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
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        in_channels=[192, 384, 768, 1536],
        transformer_decoder=dict(num_queries=200)),
    test_cfg=dict(
        semantic_on=True,
        panoptic_on=True,
        instance_on=True,
        thing_class_ids={{_base_.thing_class_ids}}))
train_dataloader = dict(batch_size=1)
