# Mask2Former Swin-S (IN-1K, window 7, 224 pretraining), COCO panoptic: the Swin-T recipe
# with 18 blocks in stage 3. Reported (mmdetection): PQ 54.5, box AP 47.8, mask AP 44.5.
_base_ = './mask2former_swin-t_8xb2-lsj-50e_coco-panoptic.py'
pretrained = 'pretrain/swin_small_patch4_window7_224.pth'
model = dict(
    backbone=dict(depths=[2, 2, 18, 2],
                  init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
