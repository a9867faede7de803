# MaskFormer (v1) with a ResNet-50 backbone, official semantic recipe: FPN pixel decoder,
# 6-layer standard transformer decoder reading res5, 100 queries; Hungarian matching and
# losses on full masks (class 1.0 with no-object 0.1, focal 20.0, dice 1.0), every layer
# supervised. num_classes is set by the dataset config that a model config inherits.
data_preprocessor = dict(
    type='MaskFormerDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size_divisor=32)
model = dict(
    type='MaskFormerSegmentor',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 1, 1),
        strides=(1, 2, 2, 2),
        # frozen BatchNorm, as Detectron2's FrozenBN in the official recipe
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    decode_head=dict(
        type='MaskFormerDecodeHead',
        num_classes=150,
        in_channels=[256, 512, 1024, 2048],
        strides=[4, 8, 16, 32],
        pixel_decoder=dict(type='FPNPixelDecoder', feat_channels=256, out_channels=256,
                           num_groups=32),
        transformer_in_feature='res5',
        transformer_decoder=dict(
            embed_dims=256,
            num_queries=100,
            num_heads=8,
            num_layers=6,
            feedforward_dims=2048,
            dropout=0.1)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole', semantic_on=True))
