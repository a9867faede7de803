# optim_wrapper custom keys that take weight decay off every BatchNorm of a ResNet-50
# backbone whose BatchNorm is trained (the official Cityscapes and Mapillary recipes; the
# official optimizers give no norm layer weight decay). mmengine applies the longest
# matching custom key and the schedule's 'backbone' key (x0.1 learning rate, weight decay
# on) matches every backbone parameter, so each BatchNorm is named. Include this file beside
# a schedule:
#   _base_ = [..., '../_base_/schedules/resnet50_bn_keys.py']
#   optim_wrapper = dict(paramwise_cfg=dict(custom_keys={{_base_.resnet50_bn_keys}}))
_bn = dict(lr_mult=0.1, decay_mult=0.0)
resnet50_bn_keys = {
    f'backbone.layer{stage + 1}.{block}.bn': _bn
    for stage, num_blocks in enumerate((3, 4, 6, 3)) for block in range(num_blocks)
}
resnet50_bn_keys.update({f'backbone.layer{stage}.0.downsample.1': _bn for stage in range(1, 5)})
resnet50_bn_keys['backbone.bn1'] = _bn
