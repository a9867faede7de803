# MaskFormer R-101, ADE20K-150 semantic, official recipe. Paper: 45.5 mIoU (47.2 ms+flip).
_base_ = './maskformer_r50_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(depth=101, init_cfg=dict(type='Pretrained',
                                           checkpoint='torchvision://resnet101')))
