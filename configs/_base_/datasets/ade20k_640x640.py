# ADE20K-150 semantic segmentation at crop 640 (the official "res640" recipe of the large
# Swin models): short-side jitter {0.5..2.0} x 640 (long side <= 2560), crop 640, flip,
# photometric distortion; test short side 640.
_base_ = './ade20k.py'
crop_size = (640, 640)
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='CheckedLoadAnnotations', reduce_zero_label=True),
    dict(type='CheckSegMap', num_classes={{_base_.num_classes}}),
    dict(type='RandomChoiceResize',
         scales=[int(crop_size[0] * x * 0.1) for x in range(5, 21)],
         resize_type='ResizeShortestEdge',
         max_size=4 * crop_size[0]),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
