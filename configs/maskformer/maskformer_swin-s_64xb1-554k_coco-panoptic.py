# MaskFormer Swin-S (IN-1K, window 7, 224 pretraining), COCO panoptic, official Swin recipe
# (see the Swin-T config). Paper: 49.7 PQ, 63M parameters.
_base_ = './maskformer_swin-t_64xb1-554k_coco-panoptic.py'
pretrained = 'pretrain/swin_small_patch4_window7_224.pth'
model = dict(
    backbone=dict(depths=[2, 2, 18, 2],
                  init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
