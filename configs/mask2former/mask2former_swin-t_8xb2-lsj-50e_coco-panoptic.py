# Mask2Former Swin-T (IN-1K, window 7, 224 pretraining), COCO panoptic, LSJ 1024, 50 epochs:
# the R-50 recipe (backbone lr x0.1, drop path 0.3, no weight decay on Swin's norms and
# position tables). Reported (mmdetection): PQ 53.4, box AP 46.3, mask AP 43.4.
_base_ = [
    '../_base_/models/mask2former_r50.py', '../_base_/datasets/coco_panoptic_lsj.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_lsj_50e_swin.py',
    '../_base_/models/swin_backbones.py'
]
# Official Swin release (swin_tiny_patch4_window7_224.pth) converted for mmseg's Swin.
model = dict(
    data_preprocessor=dict(size={{_base_.image_size}}),
    backbone={{_base_.swin_t}},
    decode_head=dict(num_classes={{_base_.num_classes}}, in_channels=[96, 192, 384, 768]),
    test_cfg=dict(
        semantic_on=True,
        panoptic_on=True,
        instance_on=True,
        thing_class_ids={{_base_.thing_class_ids}}))
