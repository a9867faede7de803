# Cityscapes instance segmentation (8 thing classes) in the COCO format written by
# tools/dataset_converters/cityscapes_instance.py (the format of mmdet's Cityscapes
# converter):
#   leftImg8bit/{train,val}/<city>/*_leftImg8bit.png,
#   annotations/instancesonly_filtered_gtFine_{train,val}.json (category ids = label ids
#   24 person .. 33 bicycle; crowd groups with iscrowd=1, dropped from the targets).
# The official Mask2Former model is scored with the Cityscapes instance evaluation; here
# COCO mask AP on the same masks (numbers are close but not identical).
# Official augmentation: short-side jitter {0.5, 0.6, ..., 2.0} x 1024 (long side <= 4096),
# crop 512x1024, photometric distortion, flip; test short side 1024, long side <= 2048.
dataset_type = 'CheckedCocoDataset'
data_root = 'data/cityscapes/'
crop_size = (512, 1024)  # (height, width)
classes = ('person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle')
num_classes = len(classes)
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, with_mask=True, poly2mask=True),
    dict(type='RandomChoiceResize',
         resize_type='mmdet.Resize',
         scales=[(4096, int(1024 * x * 0.1)) for x in range(5, 21)],
         keep_ratio=True),
    # mmdet's RandomCrop takes (width, height)
    dict(type='mmdet.RandomCrop', crop_size=crop_size[::-1], crop_type='absolute',
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='mmdet.FilterAnnotations', min_gt_bbox_wh=(1e-5, 1e-5), by_mask=True),
    dict(type='mmdet.RandomFlip', prob=0.5),
    dict(type='mmdet.PhotoMetricDistortion'),
    dict(type='PackMaskFormerInputs'),
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='mmdet.Resize', scale=(2048, 1024), keep_ratio=True),
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
        metainfo=dict(classes=classes),
        ann_file='annotations/instancesonly_filtered_gtFine_train.json',
        data_prefix=dict(img='leftImg8bit/train/'),
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
        metainfo=dict(classes=classes),
        ann_file='annotations/instancesonly_filtered_gtFine_val.json',
        data_prefix=dict(img='leftImg8bit/val/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoInstanceMetric',
    ann_file=data_root + 'annotations/instancesonly_filtered_gtFine_val.json',
    metric=['segm'])
test_evaluator = val_evaluator
