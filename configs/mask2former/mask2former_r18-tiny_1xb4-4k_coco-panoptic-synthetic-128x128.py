# Panoptic demo: the COCO panoptic recipe scaled down to train on 2 CPU cores.
# Changes from the parent: data root (synthetic COCO-layout data made by
# tools/dataset_converters/synthetic_coco.py), 128 px images with flip as the only
# augmentation (LSJ's 0.1x scales make 128 px objects vanish), schedule (1 process x
# 4 images, 4k iterations, poly decay, learning rate 1e-3 for the whole network: no
# pretrained backbone), model size (as the semantic demo, class loss weight 10 included)
# and one inference threshold, object_mask_threshold 0.25 instead of 0.8
# (mask2former_demo_size_panoptic.py).
# `fused=True` needs torch >= 2.4 on CPU; drop it for an older torch.
_base_ = [
    './mask2former_r50_8xb2-lsj-50e_coco-panoptic.py',
    '../_base_/models/mask2former_demo_size_panoptic.py'
]

# ---- data -------------------------------------------------------------------
data_root = 'data/synthetic_coco/'
image_size = (128, 128)
train_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='LoadPanopticTargets'),
    dict(type='mmdet.RandomFlip', prob=0.5),
    dict(type='PackMaskFormerInputs'),
]
test_pipeline = [
    dict(type='CheckedLoadImageFromFile'),
    dict(type='LoadPanopticTargets', with_masks=False),
    dict(type='PackMaskFormerInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(num_workers=1, dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='PanopticQualityMetric'),
    dict(type='CocoInstanceMetric', ann_file=data_root + 'annotations/instances_val2017.json',
         metric=['bbox', 'segm']),
    dict(type='IoUMetric', iou_metrics=['mIoU']),
]
test_evaluator = val_evaluator

# ---- model size (shared by the demos) ------------------------------------
num_points = 784  # as in demo_model (the parent sets 12544)
model = {{_base_.demo_model}}

# ---- schedule ---------------------------------------------------------------
max_iters = 4000
embed_multi = dict(lr_mult=1.0, decay_mult=0.0)
optim_wrapper = dict(
    _delete_=True,  # fp32: no mixed precision on CPU
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.001, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999),
                   fused=True),
    clip_grad=dict(max_norm=0.01, norm_type=2),
    paramwise_cfg=dict(
        custom_keys={
            'backbone': dict(lr_mult=1.0, decay_mult=1.0),
            'query_embed': embed_multi,
            'query_feat': embed_multi,
            'level_embed': embed_multi,
        },
        norm_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, begin=0, end=100, by_epoch=False),
    dict(type='PolyLR', eta_min=0, power=0.9, begin=100, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=2000, dynamic_intervals=None)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=500, max_keep_ckpts=2))
randomness = dict(seed=0)
