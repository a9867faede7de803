# PerPixelBaseline+ R-50, COCO-Stuff-10K semantic (171 queries, one per class), the MaskFormer
# R-50 recipe: 8 GPUs x 4 images, 60k iterations, crop 640, AdamW lr 1e-4 with weight decay
# 1e-4. Paper: 34.2 mIoU (35.8 ms+flip).
_base_ = [
    '../_base_/models/per_pixel_baseline_plus_r50.py', '../_base_/datasets/coco_stuff10k.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_60k.py'
]
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    decode_head=dict(num_classes={{_base_.num_classes}}))
optim_wrapper = dict(optimizer=dict(weight_decay=0.0001))
