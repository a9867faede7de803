# Mask2Former R-50, ADE20K instance segmentation (100 things), official recipe: 8 GPUs x 2
# images, 160k iterations, crop 640.
_base_ = [
    '../_base_/models/mask2former_r50.py', '../_base_/datasets/ade20k_instance.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_160k.py'
]
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    decode_head=dict(num_classes={{_base_.num_classes}}),
    test_cfg=dict(semantic_on=False, panoptic_on=False, instance_on=True))
