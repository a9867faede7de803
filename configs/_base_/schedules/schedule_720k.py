# Poly schedule (power 0.9) of 720k iterations, the official MaskFormer length for
# ADE20K panoptic; optimizer, clipping and hooks as schedule_160k.py.
_base_ = ['./schedule_160k.py']
max_iters = 720000
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters)
