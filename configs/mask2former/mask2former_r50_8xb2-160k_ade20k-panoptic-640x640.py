# Mask2Former R-50, ADE20K panoptic, official recipe: 8 GPUs x 2 images, 160k iterations,
# crop 640. Paper: PQ 39.7, mask AP 26.5, mIoU 46.1 from the same model.
_base_ = [
    '../_base_/models/mask2former_r50.py', '../_base_/datasets/ade20k_panoptic.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_160k.py'
]
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    decode_head=dict(num_classes={{_base_.num_classes}}),
    test_cfg=dict(
        semantic_on=True,
        panoptic_on=True,
        instance_on=True,
        thing_class_ids={{_base_.thing_class_ids}}))
