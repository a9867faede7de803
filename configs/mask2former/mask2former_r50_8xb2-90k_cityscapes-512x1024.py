# Mask2Former R-50, Cityscapes semantic (19 classes), official recipe: 8 GPUs x 2 images,
# 90k iterations, crop 512x1024, whole-image test at 1024x2048. Unlike ADE20K and COCO the
# official Cityscapes backbone trains its BatchNorm (SyncBN) instead of freezing it.
# Reported: 79.4 mIoU (82.2 ms+flip).
_base_ = [
    '../_base_/models/mask2former_r50.py', '../_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_90k.py'
]
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    backbone=dict(norm_cfg=dict(type='SyncBN', requires_grad=True), norm_eval=False),
    decode_head=dict(num_classes={{_base_.num_classes}}))
# Official: no weight decay on norm layers. The 'backbone' key (weight decay on) would
# otherwise win over norm_decay_mult, so the ResNet-50 BatchNorms are named here.
resnet_bn_multi = dict(lr_mult=0.1, decay_mult=0.0)
resnet_bn_keys = {
    f'backbone.layer{stage + 1}.{block}.bn': resnet_bn_multi
    for stage, num_blocks in enumerate((3, 4, 6, 3))
    for block in range(num_blocks)
}
resnet_bn_keys.update(
    {f'backbone.layer{stage}.0.downsample.1': resnet_bn_multi for stage in range(1, 5)})
resnet_bn_keys['backbone.bn1'] = resnet_bn_multi
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=resnet_bn_keys))
