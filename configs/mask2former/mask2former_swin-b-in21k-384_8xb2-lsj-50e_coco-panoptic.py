# Mask2Former Swin-B (IN-21K, window 12, 384 pretraining), COCO panoptic: the IN-1K Swin-B
# config with ImageNet-21K weights. Reported (mmdetection): PQ 56.3, box AP 50.0, mask AP 46.3.
_base_ = './mask2former_swin-b-384_8xb2-lsj-50e_coco-panoptic.py'
pretrained = 'pretrain/swin_base_patch4_window12_384_22k.pth'
model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
