# Mask2Former with a ResNet-50 backbone (official recipe, GUIDE-style defaults).
# num_classes is set once, by the dataset config that a model config inherits with it.
data_preprocessor = dict(
    type='MaskFormerDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size_divisor=32)
num_points = 12544  # points per mask for the matcher and the losses
loss_weights = dict(cls_weight=2.0, mask_weight=5.0, dice_weight=5.0)
model = dict(
    type='MaskFormerSegmentor',
    data_preprocessor=data_preprocessor,
    # backbone weights and input images channels-last: faster oneDNN/cuDNN convolutions
    # and pooling (same results up to float rounding, same checkpoint layout)
    channels_last=True,
    backbone=dict(
        # mmseg's ResNet (same arguments and keys) with eval-mode BatchNorms folded into
        # the convolutions: the frozen norms cost no pass of their own
        type='ResNetFoldedBN',
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
        type='Mask2FormerDecodeHead',
        num_classes=150,
        in_channels=[256, 512, 1024, 2048],
        strides=[4, 8, 16, 32],
        pixel_decoder=dict(
            type='MultiScaleDeformablePixelDecoder',
            feat_channels=256,
            out_channels=256,
            num_transformer_levels=3,
            num_encoder_layers=6,
            num_heads=8,
            num_points=4,
            feedforward_dims=1024,
            num_groups=32),
        transformer_decoder=dict(
            embed_dims=256,
            num_queries=100,
            num_heads=8,
            num_layers=9,  # + 1 prediction from the learnable queries = 10 "dec layers"
            feedforward_dims=2048),
        criterion=dict(
            type='MaskFormerCriterion',
            matcher=dict(type='HungarianPointMatcher', num_points=num_points, **loss_weights),
            no_object_weight=0.1,
            mask_loss='sigmoid_ce',
            num_points=num_points,
            oversample_ratio=3.0,
            importance_sample_ratio=0.75,
            **loss_weights)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole', semantic_on=True))
