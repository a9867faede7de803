# Mapillary Vistas v1.2 panoptic (65 classes: 37 things + 28 stuff; 18k train / 2k val
# images) read from the official panoptic files, as the official Mask2Former registration:
#   {training,validation}/images/*.jpg,
#   {training,validation}/v1.2/panoptic/panoptic_2018.json + .../v1.2/panoptic/*.png
# (the v1.2-only release has them in {training,validation}/panoptic/: change the paths).
# Category ids 1..65 map to contiguous labels 0..64 ('Unlabeled' pixels are void, 0 in the
# PNGs). Official augmentation: short-side jitter {0.5, 0.6, ..., 2.0} x 2048 (long side
# <= 8192), crop 1024, photometric distortion, flip; test long side 2048.
dataset_type = 'PanopticFormatDataset'
data_root = 'data/mapillary/'
crop_size = (1024, 1024)
num_classes = 65
# contiguous labels (category id - 1) of the things of panoptic_2018.json
thing_class_ids = [
    0, 1, 8, 19, 20, 21, 22, 23, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 44, 45, 46, 47,
    48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 59, 60, 61, 62
]
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='LoadPanopticTargets'),
    dict(type='RandomChoiceResize',
         resize_type='mmdet.Resize',
         scales=[(8192, int(2048 * x * 0.1)) for x in range(5, 21)],
         keep_ratio=True),
    dict(type='mmdet.RandomCrop', crop_size=crop_size, crop_type='absolute',
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='mmdet.FilterAnnotations', min_gt_bbox_wh=(1e-5, 1e-5), by_mask=True),
    dict(type='mmdet.RandomFlip', prob=0.5),
    dict(type='mmdet.PhotoMetricDistortion'),
    dict(type='PackMaskFormerInputs'),
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='mmdet.Resize', scale=(2048, 2048), keep_ratio=True),
    # ground truth stays at the original size: every metric is computed there
    dict(type='LoadPanopticTargets', with_masks=False),
    dict(type='PackMaskFormerInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='SeededInfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='training/v1.2/panoptic/panoptic_2018.json',
        data_prefix=dict(img='training/images/', seg='training/v1.2/panoptic/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='validation/v1.2/panoptic/panoptic_2018.json',
        data_prefix=dict(img='validation/images/', seg='validation/v1.2/panoptic/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='PanopticQualityMetric'),
    dict(type='IoUMetric', iou_metrics=['mIoU']),
]
test_evaluator = val_evaluator
