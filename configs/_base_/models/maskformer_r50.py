# MaskFormer (v1) with a ResNet-50 backbone, official semantic recipe: the data preprocessor
# and backbone of the Mask2Former R-50 base; an FPN pixel decoder, a 6-layer standard
# transformer decoder reading res5 and 100 queries; Hungarian matching and losses on full
# masks (class 1.0 with no-object 0.1, focal 20.0, dice 1.0; the head's default criterion),
# every layer supervised. num_classes is set by the dataset config a model config inherits.
_base_ = './mask2former_r50.py'
model = dict(
    decode_head=dict(
        _delete_=True,
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
            dropout=0.1)))
