# optim_wrapper custom keys that take weight decay off every Swin LayerNorm (the official
# optimizers give no norm layer weight decay). mmengine applies the longest matching custom
# key and a 'backbone' key matches every backbone parameter, so each norm is named, for up
# to 18 blocks per stage (every Swin size). Include this file beside a schedule:
#   _base_ = [..., '../_base_/schedules/swin_norm_keys.py']
#   optim_wrapper = dict(paramwise_cfg=dict(custom_keys={{_base_.swin_norm_keys}}))
# swin_norm_keys: backbone at x0.1 learning rate (Mask2Former); swin_norm_keys_full_lr:
# the whole backbone (its 'backbone' key included) at the full learning rate (MaskFormer's
# Swin recipe).
_swin_norms = [
    f'backbone.stages.{stage}.blocks.{block}.norm'
    for stage, num_blocks in enumerate((2, 2, 18, 2)) for block in range(num_blocks)
] + [f'backbone.stages.{stage}.downsample.norm' for stage in range(3)]
swin_norm_keys = {key: dict(lr_mult=0.1, decay_mult=0.0) for key in _swin_norms}
swin_norm_keys_full_lr = {key: dict(lr_mult=1.0, decay_mult=0.0) for key in _swin_norms}
swin_norm_keys_full_lr.update({
    key: dict(lr_mult=1.0, decay_mult=0.0)
    for key in ('backbone.patch_embed.norm', 'backbone.norm', 'absolute_pos_embed',
                'relative_position_bias_table')
})
swin_norm_keys_full_lr['backbone'] = dict(lr_mult=1.0, decay_mult=1.0)
