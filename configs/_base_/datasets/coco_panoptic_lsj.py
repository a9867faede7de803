# COCO panoptic (133 classes: 80 things + 53 stuff) in the official layout:
#   train2017/*.jpg, val2017/*.jpg,
#   annotations/panoptic_{train,val}2017.json + annotations/panoptic_{train,val}2017/*.png,
#   annotations/instances_val2017.json (for mask/box AP of the same model).
# Large-scale jittering (LSJ) as in the official recipe: resize to 0.1-2.0 x 1024,
# fixed-size 1024 crop (padded by the data preprocessor), flip.
dataset_type = 'PanopticFormatDataset'
data_root = 'data/coco/'
image_size = (1024, 1024)
num_classes = 133
thing_class_ids = list(range(80))  # categories sorted by id: the 80 things come first
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='LoadPanopticTargets'),
    dict(type='mmdet.RandomFlip', prob=0.5),
    dict(type='RandomResize', resize_type='mmdet.Resize', scale=image_size,
         ratio_range=(0.1, 2.0), keep_ratio=True),
    dict(type='mmdet.RandomCrop', crop_size=image_size, crop_type='absolute',
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='mmdet.FilterAnnotations', min_gt_bbox_wh=(1e-5, 1e-5), by_mask=True),
    dict(type='PackMaskFormerInputs'),
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='mmdet.Resize', scale=(1333, 800), keep_ratio=True),
    # ground truth stays at the original size: every metric is computed there
    dict(type='LoadPanopticTargets', with_masks=False),
    dict(type='PackMaskFormerInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='SeededInfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/panoptic_train2017.json',
        data_prefix=dict(img='train2017/', seg='annotations/panoptic_train2017/'),
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/panoptic_val2017.json',
        data_prefix=dict(img='val2017/', seg='annotations/panoptic_val2017/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# PQ, mask/box AP and mIoU of one model from one test run
val_evaluator = [
    dict(type='PanopticQualityMetric'),
    dict(type='CocoInstanceMetric', ann_file=data_root + 'annotations/instances_val2017.json',
         metric=['bbox', 'segm']),
    dict(type='IoUMetric', iou_metrics=['mIoU']),
]
test_evaluator = val_evaluator
