# ADE20K-150 semantic with the augmentation of mmseg's and sssegmentation's ADE20K recipes
# instead of the MaskFormer one: resize of (2048, 512) by a random ratio in [0.5, 2.0] (aspect
# kept), crop 512 with at most 75% of the crop in one class, flip, photometric distortion;
# test as ade20k.py (short side 512, long side <= 2048).
_base_ = './ade20k.py'
crop_size = (512, 512)
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
