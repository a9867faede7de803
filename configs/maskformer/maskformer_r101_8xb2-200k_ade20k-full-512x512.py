# MaskFormer R-101, ADE20K-Full semantic, official recipe (see the R-50 config). Paper: 16.8
# mIoU.
_base_ = './maskformer_r50_8xb2-200k_ade20k-full-512x512.py'
model = dict(
    backbone=dict(depth=101, init_cfg=dict(type='Pretrained',
                                           checkpoint='torchvision://resnet101')))
