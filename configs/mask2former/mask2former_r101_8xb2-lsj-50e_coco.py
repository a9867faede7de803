# Mask2Former R-101, COCO instance segmentation: the R-50 recipe with a ResNet-101
# (torchvision weights, frozen BN). Reported (mmdetection): box AP 46.7, mask AP 44.0.
_base_ = './mask2former_r50_8xb2-lsj-50e_coco.py'
model = dict(
    backbone=dict(depth=101,
                  init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
