# Mask2Former Swin-B (IN-1K, window 12, 384 pretraining), COCO panoptic: the Swin-T recipe
# with the base backbone. Reported (mmdetection): PQ 55.1, box AP 48.2, mask AP 44.9.
_base_ = './mask2former_swin-t_8xb2-lsj-50e_coco-panoptic.py'
pretrained = 'pretrain/swin_base_patch4_window12_384.pth'
model = dict(
    backbone=dict(
        pretrain_img_size=384,
        embed_dims=128,
        window_size=12,
        depths=[2, 2, 18, 2],
        num_heads=[4, 8, 16, 32],
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[128, 256, 512, 1024]))
