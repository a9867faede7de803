# MaskFormer R-50, Mapillary Vistas v1.2 semantic (65 classes), official recipe: 8 GPUs x 2
# images, 300k iterations, crop 1280 after short-side jitter around 2048, AdamW lr 1e-4 with
# weight decay 1e-4; tested at long side 2048. Paper: 53.1 mIoU (55.4 ms+flip).
_base_ = [
    '../_base_/models/maskformer_r50.py', '../_base_/datasets/mapillary_v1_65.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_300k.py'
]
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    decode_head=dict(num_classes={{_base_.num_classes}}))
optim_wrapper = dict(optimizer=dict(weight_decay=0.0001))
