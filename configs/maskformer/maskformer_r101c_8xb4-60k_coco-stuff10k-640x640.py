# MaskFormer R-101c, COCO-Stuff-10K semantic, official recipe (see the R-50 config). Paper:
# 38.0 mIoU (39.3 ms+flip).
# R101c is Detectron2's DeepLab "R-103": a ResNet-101 whose stem is three 3x3 convs
# (3->64 stride 2, 64->64, 64->128, i.e. mmseg's ResNetV1c with 128 stem channels) and
# whose res5 blocks are dilated 1, 2, 4 (multi-grid, stride kept). Its ImageNet weights are
# Detectron2's R-103.pkl, converted to mmseg ResNetV1c keys under pretrain/.
_base_ = './maskformer_r50_8xb4-60k_coco-stuff10k-640x640.py'
model = dict(
    backbone=dict(
        type='ResNetFoldedBN',  # ResNetV1c's arguments: the deep 3x3 stem
        deep_stem=True,
        avg_down=False,
        depth=101,
        stem_channels=128,
        multi_grid=(1, 2, 4),
        init_cfg=dict(type='Pretrained', checkpoint='pretrain/R-103_mmseg.pth')))
