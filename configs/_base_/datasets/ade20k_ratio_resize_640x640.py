# ADE20K-150 semantic at crop 640 with the ratio-range augmentation of ade20k_ratio_resize.py:
# resize of (2560, 640) by a random ratio in [0.5, 2.0], crop 640 (at most 75% of one class),
# flip, photometric distortion; test as ade20k_640x640.py (short side 640, long <= 2560).
_base_ = './ade20k_640x640.py'
crop_size = (640, 640)
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='CheckedLoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(4 * crop_size[0], crop_size[0]), ratio_range=(0.5, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='GenerateMaskTargets'),
    dict(type='PackMaskFormerInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
