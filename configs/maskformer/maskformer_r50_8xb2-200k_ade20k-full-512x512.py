# MaskFormer R-50, ADE20K-Full semantic (847 classes, 65535 ignored), official recipe: 8 GPUs
# x 2 images, 200k iterations, crop 512, AdamW lr 1e-4 with weight decay 1e-4. Paper: 16.0
# mIoU.
_base_ = [
    '../_base_/models/maskformer_r50.py', '../_base_/datasets/ade20k_full.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_200k.py'
]
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}, seg_pad_val={{_base_.ignore_index}}),
    decode_head=dict(num_classes={{_base_.num_classes}}))
optim_wrapper = dict(optimizer=dict(weight_decay=0.0001))
