# MaskFormer Swin-B (IN-21K, window 12, 384 pretraining), COCO panoptic, official Swin recipe
# (see the Swin-T config). Paper: 51.8 PQ, 102M parameters.
_base_ = './maskformer_swin-t_64xb1-554k_coco-panoptic.py'
pretrained = 'pretrain/swin_base_patch4_window12_384_22k.pth'
model = dict(
    backbone=dict(pretrain_img_size=384, embed_dims=128, window_size=12, depths=[2, 2, 18, 2],
                  num_heads=[4, 8, 16, 32],
                  init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[128, 256, 512, 1024]))
