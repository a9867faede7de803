# Mask2Former R-50, COCO panoptic, official recipe: 8 GPUs x 2 images, LSJ 1024, 50 epochs.
# One model, three outputs: paper PQ 51.9, mask AP 41.7, mIoU 61.7; 44M parameters.
_base_ = [
    '../_base_/models/mask2former_r50.py', '../_base_/datasets/coco_panoptic_lsj.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_lsj_50e.py'
]
model = dict(
    data_preprocessor=dict(size={{_base_.image_size}}),
    decode_head=dict(num_classes={{_base_.num_classes}}),
    test_cfg=dict(
        semantic_on=True,
        panoptic_on=True,
        instance_on=True,
        thing_class_ids={{_base_.thing_class_ids}}))
