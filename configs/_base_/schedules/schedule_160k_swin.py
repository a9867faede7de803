# The ADE20K schedule for Swin backbones: no weight decay on any Swin LayerNorm (see
# swin_norm_keys.py); patch-embedding, output norms and position tables: see the parent.
_base_ = ['./schedule_160k.py', './swin_norm_keys.py']
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={{_base_.swin_norm_keys}}))
