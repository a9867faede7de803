# Mask2Former R-50, COCO instance segmentation, official recipe: 8 GPUs x 2 images,
# LSJ 1024, 50 epochs. Paper: 43.7 mask AP.
_base_ = [
    '../_base_/models/mask2former_r50.py', '../_base_/datasets/coco_instance_lsj.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_lsj_50e.py'
]
model = dict(
    data_preprocessor=dict(size={{_base_.image_size}}),
    decode_head=dict(num_classes={{_base_.num_classes}}),
    test_cfg=dict(semantic_on=False, panoptic_on=False, instance_on=True))
