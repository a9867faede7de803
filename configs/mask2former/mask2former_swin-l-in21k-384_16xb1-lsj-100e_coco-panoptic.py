# Mask2Former Swin-L (IN-21K, window 12, 384 pretraining), COCO panoptic: 200 queries,
# 16 GPUs x 1 image (batch 16), 100 epochs = 737,500 iterations, lr x0.1 at 655,556 and
# 710,184 (official and mmdetection alike). Reported (mmdetection): PQ 57.6, box AP 52.2,
# mask AP 48.5; paper: 216M parameters.
_base_ = './mask2former_swin-b-384_8xb2-lsj-50e_coco-panoptic.py'
pretrained = 'pretrain/swin_large_patch4_window12_384_22k.pth'
model = dict(
    backbone=dict(embed_dims=192, num_heads=[6, 12, 24, 48],
                  init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[192, 384, 768, 1536],
                     transformer_decoder=dict(num_queries=200)))
train_dataloader = dict(batch_size=1)
max_iters = 737500
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False,
         milestones=[655556, 710184], gamma=0.1)
]
interval = 5000
train_cfg = dict(max_iters=max_iters, val_interval=interval,
                 dynamic_intervals=[(max_iters // interval * interval + 1, max_iters)])
