# MaskFormer R-101c, ADE20K-Full semantic, official recipe (see the R-50 config). Paper: 17.4
# mIoU. R-101c: Detectron2's R-103 (see maskformer_r101c_8xb4-60k_coco-stuff10k-640x640.py).
_base_ = './maskformer_r50_8xb2-200k_ade20k-full-512x512.py'
model = dict(
    backbone=dict(
        type='ResNetFoldedBN',  # ResNetV1c's arguments: the deep 3x3 stem
        deep_stem=True,
        avg_down=False,
        depth=101,
        stem_channels=128,
        multi_grid=(1, 2, 4),
        init_cfg=dict(type='Pretrained', checkpoint='pretrain/R-103_mmseg.pth')))
