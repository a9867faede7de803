# Cityscapes panoptic (19 classes: 11 stuff + 8 things; 2975 train / 500 val images) in the
# layout of cityscapesScripts' createPanopticImgs.py (or our
# tools/dataset_converters/cityscapes_panoptic.py, which writes the same files):
#   leftImg8bit/{train,val}/<city>/<image id>_leftImg8bit.png,
#   gtFine/cityscapes_panoptic_{train,val}.json + gtFine/cityscapes_panoptic_{train,val}/*.png.
# Category ids are the Cityscapes label ids (7 road .. 33 bicycle); sorted, they give the
# train ids 0..18 as contiguous labels, as detectron2's registration.
# Official augmentation: short-side jitter {0.5, 0.6, ..., 2.0} x 1024 (long side <= 4096),
# crop 512x1024, photometric distortion, flip; test at full resolution (short side 1024,
# long side <= 2048). PQ as the official evaluation (the COCO panoptic API), plus mIoU on
# the semantic map derived from the panoptic PNG (equal to the labelTrainIds maps).
dataset_type = 'CityscapesPanopticDataset'
data_root = 'data/cityscapes/'
crop_size = (512, 1024)  # (height, width)
num_classes = 19
thing_class_ids = list(range(11, 19))  # person, rider, car, truck, bus, train, motorcycle, bicycle
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='LoadPanopticTargets'),
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
        ann_file='gtFine/cityscapes_panoptic_train.json',
        data_prefix=dict(img='leftImg8bit/train/', seg='gtFine/cityscapes_panoptic_train/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='gtFine/cityscapes_panoptic_val.json',
        data_prefix=dict(img='leftImg8bit/val/', seg='gtFine/cityscapes_panoptic_val/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='PanopticQualityMetric'),
    dict(type='IoUMetric', iou_metrics=['mIoU']),
]
test_evaluator = val_evaluator
