# COCO panoptic as coco_panoptic_lsj.py (same files, test size and evaluators), trained with
# the DETR augmentation of the MaskFormer recipe instead of LSJ: flip, then with probability
# 0.5 either a short-side resize to {480, 512, ..., 800} (long side <= 1333), or a short-side
# resize to {400, 500, 600} (long side unbounded), a random crop of 384..600 pixels per side
# and the {480..800} resize. Images are padded only to the batch (no fixed size).
_base_ = './coco_panoptic_lsj.py'
max_size = 1333
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
