# PerPixelBaseline+ with a ResNet-50 backbone (MaskFormer paper baseline, official recipe):
# PerPixelBaseline plus MaskFormer's transformer module and mask-embedding MLP. One query per
# class (the query count is num_classes, derived) attends to res5 through 6 DETR decoder
# layers; each query's mask embedding dotted with the per-pixel embeddings gives its class's
# logit at every pixel; per-pixel cross-entropy on every decoder layer (deep supervision).
_base_ = './mask2former_r50.py'
model = dict(
    decode_head=dict(
        _delete_=True,
        type='PerPixelBaselinePlusHead',
        num_classes=150,
        in_channels=[256, 512, 1024, 2048],
        strides=[4, 8, 16, 32],
        pixel_decoder=dict(type='FPNPixelDecoder', feat_channels=256, out_channels=256,
                           num_groups=32),
        transformer_in_feature='res5',
        transformer_decoder=dict(
            embed_dims=256,
            num_heads=8,
            num_layers=6,
            feedforward_dims=2048,
            dropout=0.1),
        deep_supervision=True,
        ignore_index=255,
        loss_weight=1.0))
