# MaskFormer Swin-S (IN-1K, window 7, 224 pretraining), ADE20K-150 semantic with the recipe of
# sssegmentation's MaskFormer zoo (see the Swin-T config). sssegmentation: 49.91 mIoU.
_base_ = './maskformer_swin-t_8xb2-130e_ade20k-512x512.py'
pretrained = 'pretrain/swin_small_patch4_window7_224.pth'
model = dict(
    backbone=dict(depths=[2, 2, 18, 2],
                  init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
