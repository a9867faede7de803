# MaskFormer R-101 + 6 Enc, COCO panoptic, official recipe (see the R-50 config). Paper:
# 47.6 PQ.
_base_ = './maskformer_r50_64xb1-554k_coco-panoptic.py'
model = dict(
    backbone=dict(depth=101, init_cfg=dict(type='Pretrained',
                                           checkpoint='torchvision://resnet101')))
