# Mask2Former R-50, Cityscapes instance segmentation (8 thing classes), official recipe
# (configs/cityscapes/instance-segmentation/maskformer2_R50_bs16_90k.yaml): 8 GPUs x 2 images,
# 90k iterations, crop 512x1024, trainable SyncBN. Reported (Cityscapes evaluation): AP 37.4,
# AP50 61.9; the metric here is COCO mask AP on the same masks.
_base_ = [
    '../_base_/models/mask2former_r50.py', '../_base_/datasets/cityscapes_instance.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_90k.py',
    '../_base_/schedules/resnet50_bn_keys.py'
]
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    backbone=dict(norm_cfg=dict(type='SyncBN', requires_grad=True), norm_eval=False),
    decode_head=dict(num_classes={{_base_.num_classes}}),
    test_cfg=dict(semantic_on=False, panoptic_on=False, instance_on=True, max_per_image=100,
                  thing_class_ids=list(range(8))))  # every class is a thing
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={{_base_.resnet50_bn_keys}}))
