# MaskFormer Swin-S (IN-1K, window 7, 224 pretraining), ADE20K-150 semantic, official Swin
# recipe (see the Swin-T config). Paper: 49.8 mIoU (51.0 ms+flip).
_base_ = './maskformer_swin-t_8xb2-160k_ade20k-512x512.py'
pretrained = 'pretrain/swin_small_patch4_window7_224.pth'
model = dict(
    backbone=dict(depths=[2, 2, 18, 2],
                  init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
