# MaskFormer R-101, COCO-Stuff-10K semantic, official recipe (see the R-50 config). Paper:
# 38.1 mIoU (39.8 ms+flip).
_base_ = './maskformer_r50_8xb4-60k_coco-stuff10k-640x640.py'
model = dict(
    backbone=dict(depth=101, init_cfg=dict(type='Pretrained',
                                           checkpoint='torchvision://resnet101')))
