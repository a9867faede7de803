# Mask2Former Swin-B (IN-21K, window 12, 384 pretraining), ADE20K-150 semantic at crop 640
# (official "res640" recipe: the R-50 solver, backbone lr x0.1, drop path 0.3; test short
# side 640). Reported: 53.9 mIoU (55.1 ms+flip).
_base_ = [
    '../_base_/models/mask2former_r50.py', '../_base_/datasets/ade20k_640x640.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_160k_swin.py',
    '../_base_/models/swin_backbones.py'
]
# Official Swin release (swin_base_patch4_window12_384_22k.pth) converted for mmseg's Swin.
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    backbone={{_base_.swin_b_384_in21k}},
    decode_head=dict(num_classes={{_base_.num_classes}}, in_channels=[128, 256, 512, 1024]))
