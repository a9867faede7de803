# Mask2Former R-50, ADE20K-150 semantic, official recipe: 8 GPUs x 2 images, 160k iterations,
# crop 512. Paper: 47.2 mIoU (single scale), 44M parameters.
_base_ = [
    '../_base_/models/mask2former_r50.py', '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_160k.py'
]
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    decode_head=dict(num_classes={{_base_.num_classes}}))
