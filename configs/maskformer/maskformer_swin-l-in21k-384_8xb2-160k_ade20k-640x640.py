# MaskFormer Swin-L (IN-21K, window 12, 384 pretraining), ADE20K-150 semantic at crop 640,
# official Swin recipe (see the Swin-T config). Paper: 54.1 mIoU (55.6 ms+flip).
_base_ = './maskformer_swin-b-in21k-384_8xb2-160k_ade20k-640x640.py'
pretrained = 'pretrain/swin_large_patch4_window12_384_22k.pth'
model = dict(
    backbone=dict(embed_dims=192, num_heads=[6, 12, 24, 48],
                  init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[192, 384, 768, 1536]))
