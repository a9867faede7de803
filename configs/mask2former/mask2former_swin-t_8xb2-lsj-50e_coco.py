# Mask2Former Swin-T (IN-1K, window 7, 224 pretraining), COCO instance segmentation, LSJ
# 1024, 50 epochs: the panoptic Swin-T recipe on the 80 thing classes. Reported
# (mmdetection): box AP 47.7, mask AP 44.7.
_base_ = [
    '../_base_/models/mask2former_r50.py', '../_base_/datasets/coco_instance_lsj.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_lsj_50e_swin.py',
    '../_base_/models/swin_backbones.py'
]
model = dict(
    data_preprocessor=dict(size={{_base_.image_size}}),
    backbone={{_base_.swin_t}},
    decode_head=dict(num_classes={{_base_.num_classes}}, in_channels=[96, 192, 384, 768]),
    test_cfg=dict(semantic_on=False, panoptic_on=False, instance_on=True))
