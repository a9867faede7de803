# MaskFormer R-50, COCO-Stuff-10K semantic (171 classes), official recipe: 8 GPUs x 4 images,
# 60k iterations, crop 640, AdamW lr 1e-4 with weight decay 1e-4. Paper: 37.1 mIoU (38.9
# ms+flip).
_base_ = [
    '../_base_/models/maskformer_r50.py', '../_base_/datasets/coco_stuff10k.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_60k.py'
]
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    decode_head=dict(num_classes={{_base_.num_classes}}))
optim_wrapper = dict(optimizer=dict(weight_decay=0.0001))
