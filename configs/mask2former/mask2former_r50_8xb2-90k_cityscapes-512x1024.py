# Mask2Former R-50, Cityscapes semantic (19 classes), official recipe: 8 GPUs x 2 images,
# 90k iterations, crop 512x1024, whole-image test at 1024x2048. Unlike ADE20K and COCO the
# official Cityscapes backbone trains its BatchNorm (SyncBN) instead of freezing it, with no
# weight decay on it (resnet50_bn_keys.py). Reported: 79.4 mIoU (82.2 ms+flip).
_base_ = [
    '../_base_/models/mask2former_r50.py', '../_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_90k.py',
    '../_base_/schedules/resnet50_bn_keys.py'
]
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    backbone=dict(norm_cfg=dict(type='SyncBN', requires_grad=True), norm_eval=False),
    decode_head=dict(num_classes={{_base_.num_classes}}))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={{_base_.resnet50_bn_keys}}))
