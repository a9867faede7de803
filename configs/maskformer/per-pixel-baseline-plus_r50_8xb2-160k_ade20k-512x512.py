# PerPixelBaseline+ R-50, ADE20K-150 semantic, the MaskFormer R-50 recipe: 8 GPUs x 2 images,
# 160k iterations, crop 512, AdamW lr 1e-4 with weight decay 1e-4. Paper: 41.9 mIoU (42.9
# ms+flip).
_base_ = [
    '../_base_/models/per_pixel_baseline_plus_r50.py', '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_160k.py'
]
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    decode_head=dict(num_classes={{_base_.num_classes}}))
optim_wrapper = dict(optimizer=dict(weight_decay=0.0001))
