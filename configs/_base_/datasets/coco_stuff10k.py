# COCO-Stuff-10K semantic segmentation (171 classes: 80 things + 91 stuff; 9k train / 1k test
# images), read with mmseg's COCOStuffDataset in the layout of mmseg's converter
# (mmsegmentation tools/dataset_converters/coco_stuff10k.py):
#   images/{train2014,test2014}/*.jpg, annotations/{train2014,test2014}/*_labelTrainIds.png
# where 0 is unlabelled and 1..171 are the classes in COCO id order; reduce_zero_label makes
# them 0..170 with 255 ignored, the labels of the official preparation script.
# Official augmentation: short-side jitter {0.5, 0.6, ..., 1.5} x 640 (long side <= 2560),
# crop 640, flip, photometric distortion; test short side 640 (long side <= 2560).
dataset_type = 'COCOStuffDataset'
data_root = 'data/coco_stuff10k'
crop_size = (640, 640)
num_classes = 171
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='CheckedLoadAnnotations'),  # reduce_zero_label comes from the dataset
    dict(type='RandomChoiceResize',
         scales=[int(x * 0.1 * crop_size[0]) for x in range(5, 16)],
         resize_type='ResizeShortestEdge',
         max_size=4 * crop_size[0]),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='GenerateMaskTargets'),
    dict(type='PackMaskFormerInputs'),
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='Resize', scale=(4 * crop_size[0], crop_size[0]), keep_ratio=True),
    # annotations are loaded after Resize: evaluation is at the original size
    dict(type='CheckedLoadAnnotations'),  # reduce_zero_label comes from the dataset
    dict(type='PackMaskFormerInputs'),
]
train_dataloader = dict(
    batch_size=4,  # 8 GPUs x 4 = the official batch of 32
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='SeededInfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        reduce_zero_label=True,
        data_prefix=dict(img_path='images/train2014', seg_map_path='annotations/train2014'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        reduce_zero_label=True,
        data_prefix=dict(img_path='images/test2014', seg_map_path='annotations/test2014'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
