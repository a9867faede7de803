# Mask2Former R-50, Cityscapes panoptic (19 classes, 8 things), official recipe
# (configs/cityscapes/panoptic-segmentation/maskformer2_R50_bs16_90k.yaml): 8 GPUs x 2 images,
# 90k iterations, crop 512x1024, trainable SyncBN in the backbone; one test run gives PQ,
# mask AP-ready instances and mIoU. Reported: PQ 62.1, AP 37.3, mIoU 77.5.
_base_ = [
    '../_base_/models/mask2former_r50.py', '../_base_/datasets/cityscapes_panoptic.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_90k.py',
    '../_base_/schedules/resnet50_bn_keys.py'
]
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    backbone=dict(norm_cfg=dict(type='SyncBN', requires_grad=True), norm_eval=False),
    decode_head=dict(num_classes={{_base_.num_classes}}),
    test_cfg=dict(semantic_on=True, panoptic_on=True, instance_on=True,
                  object_mask_threshold=0.8, overlap_threshold=0.8,
                  thing_class_ids={{_base_.thing_class_ids}}))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={{_base_.resnet50_bn_keys}}))
