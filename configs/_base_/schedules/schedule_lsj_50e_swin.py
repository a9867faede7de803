# The COCO LSJ 50-epoch schedule for Swin backbones: no weight decay on any Swin LayerNorm
# (see swin_norm_keys.py).
_base_ = ['./schedule_lsj_50e.py', './swin_norm_keys.py']
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={{_base_.swin_norm_keys}}))
