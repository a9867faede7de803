# MaskFormer Swin-T (IN-1K, window 7, 224 pretraining), ADE20K-150 semantic with the recipe of
# sssegmentation's MaskFormer zoo: batch 16, crop 512, 130 epochs, AdamW lr 6e-5, poly
# (power 1) after a 1500-iteration warm-up, mmseg-style ratio-range augmentation. The model is
# the official MaskFormer (FPN pixel decoder with GroupNorm, 256 channels); sssegmentation's
# own uses a PPM + FPN pixel decoder with BatchNorm at 512 channels, not reproduced here.
# sssegmentation: 47.31 mIoU.
_base_ = [
    '../_base_/models/maskformer_r50.py', '../_base_/datasets/ade20k_ratio_resize.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_130e_ade20k.py',
    '../_base_/models/swin_backbones.py'
]
# Official Swin release converted for mmseg's SwinTransformer.
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    backbone={{_base_.swin_t}},
    decode_head=dict(num_classes={{_base_.num_classes}}, in_channels=[96, 192, 384, 768]))
