# Mask2Former R-50, Mapillary Vistas v1.2 panoptic (65 classes, 37 things), official recipe
# (configs/mapillary-vistas/panoptic-segmentation/maskformer_R50_bs16_300k.yaml): 8 GPUs x 2
# images, 300k iterations, crop 1024, backbone BatchNorm trained (not frozen).
# Reported: PQ 36.3, mIoU 50.7.
_base_ = [
    '../_base_/models/mask2former_r50.py', '../_base_/datasets/mapillary_v1_65_panoptic.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_300k.py',
    '../_base_/schedules/resnet50_bn_keys.py'
]
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    backbone=dict(norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False),
    decode_head=dict(num_classes={{_base_.num_classes}}),
    test_cfg=dict(semantic_on=True, panoptic_on=True, instance_on=False,
                  object_mask_threshold=0.0, overlap_threshold=0.8,
                  thing_class_ids={{_base_.thing_class_ids}}))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={{_base_.resnet50_bn_keys}}))
