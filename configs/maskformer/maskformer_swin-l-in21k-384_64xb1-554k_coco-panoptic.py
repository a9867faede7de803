# MaskFormer Swin-L (IN-21K, window 12, 384 pretraining), COCO panoptic, official Swin recipe
# (see the Swin-T config) with the long side of the multi-scale resize capped at 1000 instead
# of 1333 (memory). Paper: 52.7 PQ, 212M parameters.
_base_ = './maskformer_swin-t_64xb1-554k_coco-panoptic.py'
pretrained = 'pretrain/swin_large_patch4_window12_384_22k.pth'
model = dict(
    backbone=dict(pretrain_img_size=384, embed_dims=192, window_size=12, depths=[2, 2, 18, 2],
                  num_heads=[6, 12, 24, 48],
                  init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[192, 384, 768, 1536]))
max_size = 1000
unbounded = 1 << 30  # the long side of the pre-crop resize is not capped
multi_scale = [
    dict(type='RandomChoiceResize',
         resize_type='mmdet.Resize',
         scales=[(max_size, short) for short in range(480, 801, 32)],
         keep_ratio=True)
]
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='LoadPanopticTargets'),
    dict(type='mmdet.RandomFlip', prob=0.5),
    dict(type='RandomChoice',
         transforms=[
             multi_scale,
             [
                 dict(type='RandomChoiceResize',
                      resize_type='mmdet.Resize',
                      scales=[(unbounded, short) for short in (400, 500, 600)],
                      keep_ratio=True),
                 dict(type='mmdet.RandomCrop', crop_type='absolute_range', crop_size=(384, 600),
                      recompute_bbox=True, allow_negative_crop=True),
             ] + multi_scale,
         ]),
    dict(type='mmdet.FilterAnnotations', min_gt_bbox_wh=(1e-5, 1e-5), by_mask=True),
    dict(type='PackMaskFormerInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
