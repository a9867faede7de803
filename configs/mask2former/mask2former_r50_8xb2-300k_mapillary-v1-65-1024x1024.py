# Mask2Former R-50, Mapillary Vistas v1.2 semantic (65 classes), official recipe
# (configs/mapillary-vistas/semantic-segmentation/maskformer2_R50_bs16_300k.yaml): 8 GPUs x 2
# images, 300k iterations, short-side jitter {0.5, ..., 2.0} x 2048 (long side <= 8192), crop
# 1024 (MaskFormer crops 1280), flip, photometric distortion; tested at long side 2048.
# Reported: 57.4 mIoU (59.0 ms+flip).
_base_ = [
    '../_base_/models/mask2former_r50.py', '../_base_/datasets/mapillary_v1_65.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_300k.py'
]
crop_size = (1024, 1024)
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='CheckedLoadAnnotations'),
    dict(type='RandomChoiceResize',
         scales=[int(x * 0.1 * 2048) for x in range(5, 21)],
         resize_type='ResizeShortestEdge',
         max_size=8192),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='GenerateMaskTargets'),
    dict(type='PackMaskFormerInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes={{_base_.num_classes}}))
