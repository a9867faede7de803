# The MaskFormer Swin recipe of sssegmentation on ADE20K-150: AdamW lr 6e-5, weight decay
# 0.01 (none on norms, relative position bias tables and absolute position embeddings), the
# backbone at the full learning rate, no gradient clipping; 130 epochs of batch 16, i.e.
# 130 x (20210 // 16) = 164,190 iterations, with a poly decay (power 1.0) to 0 over all of
# them multiplied by a linear warm-up from 1e-6 over the first 1500 iterations.
_base_ = ['./schedule_160k.py']
no_decay = dict(decay_mult=0.0)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.00006, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': no_decay,
            'relative_position_bias_table': no_decay,
        },
        norm_decay_mult=0.0))
max_iters = 130 * (20210 // 16)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters)
