# PerPixelBaseline with a ResNet-50 backbone (MaskFormer paper baseline, official recipe): the
# data preprocessor and backbone of the Mask2Former R-50 base; the FPN pixel decoder of
# MaskFormer (256 channels, GN) and a 1x1 conv classifier on its per-pixel embeddings at 1/4;
# per-pixel cross-entropy (ignore 255, weight 1.0) on logits upsampled to the input size.
# num_classes is set by the dataset config a model config inherits.
_base_ = './mask2former_r50.py'
model = dict(
    decode_head=dict(
        _delete_=True,
        type='PerPixelBaselineHead',
        num_classes=150,
        in_channels=[256, 512, 1024, 2048],
        strides=[4, 8, 16, 32],
        pixel_decoder=dict(type='FPNPixelDecoder', feat_channels=256, out_channels=256,
                           num_groups=32),
        ignore_index=255,
        loss_weight=1.0))
