# ADE20K instance segmentation (100 thing classes) in the layout written by the official
# preparation script (prepare_ade20k_ins_seg.py): images/{training,validation}/*.jpg and
# ade20k_instance_{train,val}.json (COCO instance format; category ids are the 0-based
# SceneParse150 ids of the 100 things, names below; mmdet matches them by name).
# Read with mmdet's CocoDataset; official augmentation: short-side jitter
# {0.5..2.0} x 640 (long side <= 2560), crop 640, flip, photometric distortion.
dataset_type = 'CheckedCocoDataset'
data_root = 'data/ade/ADEChallengeData2016/'
crop_size = (640, 640)
num_classes = 100
classes = (
    'bed', 'windowpane', 'cabinet', 'person', 'door', 'table', 'curtain', 'chair', 'car',
    'painting', 'sofa', 'shelf', 'mirror', 'armchair', 'seat', 'fence', 'desk', 'wardrobe',
    'lamp', 'bathtub', 'railing', 'cushion', 'box', 'column', 'signboard', 'chest of drawers',
    'counter', 'sink', 'fireplace', 'refrigerator', 'stairs', 'case', 'pool table', 'pillow',
    'screen door', 'bookcase', 'coffee table', 'toilet', 'flower', 'book', 'bench',
    'countertop', 'stove', 'palm', 'kitchen island', 'computer', 'swivel chair', 'boat',
    'arcade machine', 'bus', 'towel', 'light', 'truck', 'chandelier', 'awning', 'streetlight',
    'booth', 'television receiver', 'airplane', 'apparel', 'pole', 'bannister', 'ottoman',
    'bottle', 'van', 'ship', 'fountain', 'washer', 'plaything', 'stool', 'barrel', 'basket',
    'bag', 'minibike', 'oven', 'ball', 'food', 'step', 'trade name', 'microwave', 'pot',
    'animal', 'bicycle', 'dishwasher', 'screen', 'sculpture', 'hood', 'sconce', 'vase',
    'traffic light', 'tray', 'ashcan', 'fan', 'plate', 'monitor', 'bulletin board', 'radiator',
    'glass', 'clock', 'flag')
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='mmdet.LoadAnnotations', with_bbox=True, with_mask=True, poly2mask=True),
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
        ann_file='ade20k_instance_train.json',
        data_prefix=dict(img='images/training/'),
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
        ann_file='ade20k_instance_val.json',
        data_prefix=dict(img='images/validation/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoInstanceMetric', ann_file=data_root + 'ade20k_instance_val.json',
    metric=['segm'])
test_evaluator = val_evaluator
