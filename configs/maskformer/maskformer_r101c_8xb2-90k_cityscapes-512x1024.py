# MaskFormer R-101c, Cityscapes semantic, official recipe (see the R-101 config). Paper: 79.7
# mIoU (81.4 ms+flip). R-101c: Detectron2's R-103 (see
# maskformer_r101c_8xb4-60k_coco-stuff10k-640x640.py).
_base_ = './maskformer_r101_8xb2-90k_cityscapes-512x1024.py'
model = dict(
    backbone=dict(
        type='ResNetFoldedBN',  # ResNetV1c's arguments: the deep 3x3 stem
        deep_stem=True,
        avg_down=False,
        stem_channels=128,
        multi_grid=(1, 2, 4),
        init_cfg=dict(type='Pretrained', checkpoint='pretrain/R-103_mmseg.pth')))
