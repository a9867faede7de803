# ADE20K panoptic (150 classes: 100 things + 50 stuff) in the layout written by the
# official preparation script (prepare_ade20k_pan_seg.py):
#   images/{training,validation}/*.jpg,
#   ade20k_panoptic_{train,val}.json + ade20k_panoptic_{train,val}/*.png,
#   ade20k_instance_val.json (from prepare_ade20k_ins_seg.py, for mask AP).
# Official augmentation: short-side jitter {0.5..2.0} x 640 (long side <= 2560),
# crop 640, flip, photometric distortion; test short side 640.
dataset_type = 'PanopticFormatDataset'
data_root = 'data/ade/ADEChallengeData2016/'
crop_size = (640, 640)
num_classes = 150
# contiguous indices (= category ids 0..149) of the 100 thing classes
thing_class_ids = [
    7, 8, 10, 12, 14, 15, 18, 19, 20, 22, 23, 24, 27, 30, 31, 32, 33, 35, 36, 37, 38, 39, 41,
    42, 43, 44, 45, 47, 49, 50, 53, 55, 56, 57, 58, 62, 64, 65, 66, 67, 69, 70, 71, 72, 73, 74,
    75, 76, 78, 80, 81, 82, 83, 85, 86, 87, 88, 89, 90, 92, 93, 95, 97, 98, 102, 103, 104, 107,
    108, 110, 111, 112, 115, 116, 118, 119, 120, 121, 123, 124, 125, 126, 127, 129, 130, 132,
    133, 134, 135, 136, 137, 138, 139, 142, 143, 144, 146, 147, 148, 149
]
# the instance file of prepare_ade20k_ins_seg.py (and of our converter) gives each thing its
# 0-based SceneParse150 id, shared with the panoptic file, but names some things differently
# ("windowpane" for "window "), so labels map to it by id, not by name
instance_category_ids = [
    label if label in thing_class_ids else -1 for label in range(num_classes)
]
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='LoadPanopticTargets'),
    dict(type='RandomChoiceResize',
         resize_type='mmdet.Resize',
         scales=[(4 * crop_size[0], int(crop_size[0] * x * 0.1)) for x in range(5, 21)],
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
    dict(type='mmdet.Resize', scale=(4 * crop_size[0], crop_size[0]), keep_ratio=True),
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
        ann_file='ade20k_panoptic_train.json',
        data_prefix=dict(img='images/training/', seg='ade20k_panoptic_train/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ade20k_panoptic_val.json',
        data_prefix=dict(img='images/validation/', seg='ade20k_panoptic_val/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='PanopticQualityMetric'),
    dict(type='CocoInstanceMetric', ann_file=data_root + 'ade20k_instance_val.json',
         metric=['segm'], label_to_category_id=instance_category_ids),
    dict(type='IoUMetric', iou_metrics=['mIoU']),
]
test_evaluator = val_evaluator
