# Mapillary Vistas v1.2 semantic segmentation (65 classes evaluated; 18k train / 2k val
# images), read with mmseg's MapillaryDataset_v1 in mmseg's layout:
#   {training,validation}/images/*.jpg, {training,validation}/v1.2/labels/*.png
# (the v1.2-only release has the labels in {training,validation}/labels: change
# seg_map_path). The PNGs hold 0..64 for the classes and 65 for 'Unlabeled'; listing only
# the 65 classes in metainfo makes the dataset map 65 to 255, the ignored label (the
# official recipe ignores 65 in the same way).
# Official augmentation: short-side jitter {0.5, 0.6, ..., 2.0} x 2048 (long side <= 8192),
# crop 1280, flip, photometric distortion; test long side 2048.
dataset_type = 'MapillaryDataset_v1'
data_root = 'data/mapillary/'
crop_size = (1280, 1280)
num_classes = 65
classes = (
    'Bird', 'Ground Animal', 'Curb', 'Fence', 'Guard Rail', 'Barrier', 'Wall', 'Bike Lane',
    'Crosswalk - Plain', 'Curb Cut', 'Parking', 'Pedestrian Area', 'Rail Track', 'Road',
    'Service Lane', 'Sidewalk', 'Bridge', 'Building', 'Tunnel', 'Person', 'Bicyclist',
    'Motorcyclist', 'Other Rider', 'Lane Marking - Crosswalk', 'Lane Marking - General',
    'Mountain', 'Sand', 'Sky', 'Snow', 'Terrain', 'Vegetation', 'Water', 'Banner', 'Bench',
    'Bike Rack', 'Billboard', 'Catch Basin', 'CCTV Camera', 'Fire Hydrant', 'Junction Box',
    'Mailbox', 'Manhole', 'Phone Booth', 'Pothole', 'Street Light', 'Pole', 'Traffic Sign Frame',
    'Utility Pole', 'Traffic Light', 'Traffic Sign (Back)', 'Traffic Sign (Front)', 'Trash Can',
    'Bicycle', 'Boat', 'Bus', 'Car', 'Caravan', 'Motorcycle', 'On Rails', 'Other Vehicle',
    'Trailer', 'Truck', 'Wheeled Slow', 'Car Mount', 'Ego Vehicle',
)
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
test_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='Resize', scale=(2048, 2048), keep_ratio=True),
    dict(type='CheckedLoadAnnotations'),
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
        metainfo=dict(classes=classes),
        data_prefix=dict(img_path='training/images', seg_map_path='training/v1.2/labels'),
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
        data_prefix=dict(img_path='validation/images', seg_map_path='validation/v1.2/labels'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
