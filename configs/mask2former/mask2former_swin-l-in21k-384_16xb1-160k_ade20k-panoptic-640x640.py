# Mask2Former Swin-L (IN-21K, window 12, 384 pretraining), ADE20K panoptic at crop 640,
# 200 queries, 16 GPUs x 1 image (batch 16, as the official Swin-L models), 160k iterations.
# Reported from one model: PQ 48.1, mask AP 34.2, mIoU 54.5.
_base_ = [
    '../_base_/models/mask2former_r50.py', '../_base_/datasets/ade20k_panoptic.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_160k_swin.py',
    '../_base_/models/swin_backbones.py'
]
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    backbone={{_base_.swin_l_384_in21k}},
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        in_channels=[192, 384, 768, 1536],
        transformer_decoder=dict(num_queries=200)),
    test_cfg=dict(
        semantic_on=True,
        panoptic_on=True,
        instance_on=True,
        thing_class_ids={{_base_.thing_class_ids}}))
train_dataloader = dict(batch_size=1)
