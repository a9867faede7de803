# Mask2Former Swin-T (IN-1K, window 7, 224 pretraining), ADE20K-150 semantic, 160k iterations.
# Paper: 47.7 mIoU (single scale), 47M parameters.
_base_ = [
    './mask2former_r50_8xb2-160k_ade20k-512x512.py', '../_base_/schedules/swin_norm_keys.py',
    '../_base_/models/swin_backbones.py'
]
# Official Swin release (swin_tiny_patch4_window7_224.pth) converted for mmseg's SwinTransformer.
model = dict(
    backbone={{_base_.swin_t}},
    decode_head=dict(in_channels=[96, 192, 384, 768]))
# no weight decay on Swin's norms (swin_norm_keys.py) and position tables (the schedule)
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={{_base_.swin_norm_keys}}))
