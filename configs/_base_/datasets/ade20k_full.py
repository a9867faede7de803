# ADE20K-Full semantic segmentation (847 classes) in the layout written by the official
# preparation script (prepare_ade20k_full_sem_seg.py, images resized to short side <= 512):
#   images_detectron2/{training,validation}/*.jpg,
#   annotations_detectron2/{training,validation}/*.tif (uint16 labels 0..846, 65535 ignored).
# 16-bit maps need Load16BitAnnotations (mmseg's LoadAnnotations casts to uint8), and every
# consumer of labels is told ignore_index=65535: the mask targets, the per-pixel losses, the
# padding of the data preprocessor (seg_pad_val, set by the model configs) and the metric.
# Official augmentation as ADE20K-150: short-side jitter {0.5..2.0} x 512 (long side <= 2048),
# crop 512, flip, photometric distortion; test short side 512.
dataset_type = 'ADE20KFullDataset'
data_root = 'data/ADE20K_2021_17_01'
crop_size = (512, 512)
num_classes = 847
ignore_index = 65535
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='Load16BitAnnotations'),
    dict(type='RandomChoiceResize',
         scales=[int(x * 0.1 * crop_size[0]) for x in range(5, 21)],
         resize_type='ResizeShortestEdge',
         max_size=4 * crop_size[0]),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0, ignore_index=ignore_index),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='GenerateMaskTargets', ignore_index=ignore_index),
    dict(type='PackMaskFormerInputs'),
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='Resize', scale=(4 * crop_size[0], crop_size[0]), keep_ratio=True),
    # annotations are loaded after Resize: evaluation is at the original size
    dict(type='Load16BitAnnotations'),
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
        data_prefix=dict(img_path='images_detectron2/training',
                         seg_map_path='annotations_detectron2/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images_detectron2/validation',
                         seg_map_path='annotations_detectron2/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'], ignore_index=ignore_index)
test_evaluator = val_evaluator
