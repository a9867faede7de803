# MaskFormer R-101, Cityscapes semantic (19 classes), official recipe: 8 GPUs x 2 images, 90k
# iterations, crop 512x1024, AdamW lr 1e-4 with weight decay 1e-4; tested at full
# resolution. Paper: 78.5 mIoU (80.3 ms+flip).
_base_ = [
    '../_base_/models/maskformer_r50.py', '../_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_90k.py'
]
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    backbone=dict(depth=101, init_cfg=dict(type='Pretrained',
                                           checkpoint='torchvision://resnet101')),
    decode_head=dict(num_classes={{_base_.num_classes}}))
optim_wrapper = dict(optimizer=dict(weight_decay=0.0001))
