# Official Mask2Former COCO schedule: AdamW, 368,750 iterations of batch 16 (50 epochs),
# learning rate x0.1 at 327,778 and 355,092; mixed precision on.
_base_ = ['./schedule_160k.py']
max_iters = 368750
optim_wrapper = dict(type='AutocastOptimWrapper', dtype='float16')
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False,
         milestones=[327778, 355092], gamma=0.1)
]
interval = 5000
train_cfg = dict(max_iters=max_iters, val_interval=interval,
                 dynamic_intervals=[(max_iters // interval * interval + 1, max_iters)])
