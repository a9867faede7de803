# MaskFormer R-101c, ADE20K-150 semantic, official recipe. Paper: 46.0 mIoU (48.1 ms+flip).
# R101c is Detectron2's DeepLab "R-103": a ResNet-101 whose stem is three 3x3 convs
# (3->64 stride 2, 64->64, 64->128, i.e. mmseg's ResNetV1c with 128 stem channels) and
# whose res5 blocks are dilated 1, 2, 4 (multi-grid, stride kept). Its ImageNet weights are
# Detectron2's R-103.pkl, converted to mmseg ResNetV1c keys under pretrain/.
_base_ = './maskformer_r50_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(
        type='ResNetFoldedBN',  # ResNetV1c's arguments: the deep 3x3 stem
        deep_stem=True,
        avg_down=False,
        depth=101,
        stem_channels=128,
        multi_grid=(1, 2, 4),
        init_cfg=dict(type='Pretrained', checkpoint='pretrain/R-103_mmseg.pth')))
