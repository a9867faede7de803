# MaskFormer R-101 + 6 Enc, ADE20K panoptic, official recipe (see the R-50 config). Paper:
# 35.7 PQ.
_base_ = './maskformer_r50_8xb2-720k_ade20k-panoptic-640x640.py'
model = dict(
    backbone=dict(depth=101, init_cfg=dict(type='Pretrained',
                                           checkpoint='torchvision://resnet101')))
