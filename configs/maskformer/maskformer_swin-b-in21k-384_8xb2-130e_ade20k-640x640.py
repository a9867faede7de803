# MaskFormer Swin-B (IN-21K, window 12, 384 pretraining), ADE20K-150 semantic at crop 640 with
# the recipe of sssegmentation's MaskFormer zoo (see the Swin-T config). sssegmentation:
# 53.22 mIoU.
_base_ = [
    '../_base_/models/maskformer_r50.py', '../_base_/datasets/ade20k_ratio_resize_640x640.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_130e_ade20k.py',
    '../_base_/models/swin_backbones.py'
]
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    backbone={{_base_.swin_b_384_in21k}},
    decode_head=dict(num_classes={{_base_.num_classes}}, in_channels=[128, 256, 512, 1024]))
