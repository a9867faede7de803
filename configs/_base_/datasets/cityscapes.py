# Cityscapes semantic segmentation (19 classes; 2975 train / 500 val images), read with
# mmseg's CityscapesDataset in the layout of mmseg's converter:
#   leftImg8bit/{train,val}/<city>/*_leftImg8bit.png,
#   gtFine/{train,val}/<city>/*_gtFine_labelTrainIds.png (255 ignored).
# Official augmentation: short-side jitter {0.5, 0.6, ..., 2.0} x 1024 (long side <= 4096),
# crop 512x1024, flip, photometric distortion; test at full resolution (short side 1024,
# long side <= 2048).
dataset_type = 'CityscapesDataset'
data_root = 'data/cityscapes/'
crop_size = (512, 1024)
num_classes = 19
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='CheckedLoadAnnotations'),
    dict(type='RandomChoiceResize',
         scales=[int(x * 0.1 * 1024) for x in range(5, 21)],
         resize_type='ResizeShortestEdge',
         max_size=4096),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='GenerateMaskTargets'),
    dict(type='PackMaskFormerInputs'),
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
    dict(type='CheckedLoadAnnotations'),
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
        data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
