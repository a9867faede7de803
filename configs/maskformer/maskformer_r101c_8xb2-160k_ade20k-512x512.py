# MaskFormer R-101c, ADE20K-150 semantic, official recipe. Paper: 46.0 mIoU (48.1 ms+flip).
# R101c is Detectron2's "R-103": a ResNet-101 whose stem is three 3x3 convs (3->32 stride 2,
# 32->32, 32->64), which is mmseg's ResNetV1c layout. The official run starts from
# Detectron2's R-103.pkl; mmseg's ImageNet ResNetV1c-101 weights are the default here.
_base_ = './maskformer_r50_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(
        type='ResNetV1c',
        depth=101,
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnet101_v1c')))
