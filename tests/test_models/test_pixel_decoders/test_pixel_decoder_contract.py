"""The contract every pixel decoder keeps: attributes, PixelDecoderOutput, errors, head use."""
import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from mmseg.structures import SegDataSample

from mmseg_maskformer.models.heads import Mask2FormerDecodeHead
from mmseg_maskformer.models.pixel_decoders import (FPNPixelDecoder,
                                                    MultiScaleDeformablePixelDecoder,
                                                    PixelDecoderOutput,
                                                    TransformerEncoderPixelDecoder)
from mmseg_maskformer.registry import MODELS

IN_CHANNELS = [8, 16, 32, 64]
STRIDES = [4, 8, 16, 32]
FEAT, OUT = 16, 12

# tiny configs of the three decoders; the encoder output exists only with an encoder
DECODERS = {
    'FPNPixelDecoder': dict(num_groups=4),
    'TransformerEncoderPixelDecoder': dict(num_encoder_layers=2, num_heads=2,
                                           feedforward_dims=32, num_groups=4),
    'MultiScaleDeformablePixelDecoder': dict(num_encoder_layers=1, num_heads=2, num_points=2,
                                             feedforward_dims=32, num_groups=4),
}
CLASSES = {
    'FPNPixelDecoder': FPNPixelDecoder,
    'TransformerEncoderPixelDecoder': TransformerEncoderPixelDecoder,
    'MultiScaleDeformablePixelDecoder': MultiScaleDeformablePixelDecoder,
}
HAS_ENCODER = {'FPNPixelDecoder': False, 'TransformerEncoderPixelDecoder': True,
               'MultiScaleDeformablePixelDecoder': True}


def build(name: str, **kwargs):
    torch.manual_seed(0)
    cfg = dict(type=name, in_channels=IN_CHANNELS, strides=STRIDES, feat_channels=FEAT,
               out_channels=OUT, **DECODERS[name])
    cfg.update(kwargs)
    return MODELS.build(cfg)


def feats_for(size, batch: int = 2, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, c, size[0] // s, size[1] // s, generator=gen)
            for c, s in zip(IN_CHANNELS, STRIDES)]


@pytest.mark.parametrize('name', list(DECODERS))
def test_registered_with_common_attributes(name):
    decoder = build(name)
    assert type(decoder) is CLASSES[name]
    assert decoder.in_channels == IN_CHANNELS
    assert decoder.strides == STRIDES
    assert (decoder.feat_channels, decoder.out_channels) == (FEAT, OUT)
    assert decoder.num_transformer_levels == 3


@pytest.mark.parametrize('size', [(64, 64), (64, 96)], ids=['64x64', '64x96'])
@pytest.mark.parametrize('name', list(DECODERS))
def test_output_contract(name, size):
    out = build(name)(feats_for(size))
    h, w = size
    assert isinstance(out, PixelDecoderOutput)
    assert out.mask_features.shape == (2, OUT, h // 4, w // 4)
    # coarse to fine: strides 32, 16, 8
    assert [tuple(m.shape) for m in out.multi_scale_features] == [
        (2, FEAT, h // s, w // s) for s in (32, 16, 8)]
    if HAS_ENCODER[name]:
        assert out.transformer_encoder_features.shape == (2, FEAT, h // 32, w // 32)
    else:
        assert out.transformer_encoder_features is None
    tensors = [out.mask_features, *out.multi_scale_features]
    assert all(bool(torch.isfinite(t).all()) for t in tensors)


@pytest.mark.parametrize('name', list(DECODERS))
def test_gradients_reach_every_parameter(name):
    decoder = build(name)
    # zero-initialised weights (MSDeformAttn's attention_weights and sampling_offsets)
    # block the gradient of what feeds them at the first step only; unblock them
    with torch.no_grad():
        for p in decoder.parameters():
            if not bool(p.any()):
                p.normal_(0, 0.02)
    out = decoder(feats_for((64, 96)))
    tensors = [out.mask_features, *out.multi_scale_features]
    if out.transformer_encoder_features is not None:
        tensors.append(out.transformer_encoder_features)
    gen = torch.Generator().manual_seed(2)
    # a random projection: a plain sum is blind to weights in front of a GroupNorm
    loss = sum((t * torch.randn(t.shape, generator=gen)).sum() for t in tensors)
    loss.backward()
    missing = [n for n, p in decoder.named_parameters()
               if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    assert missing == []


@pytest.mark.parametrize('name', ['FPNPixelDecoder', 'TransformerEncoderPixelDecoder'])
@pytest.mark.parametrize('levels', [1, 2, 4])
def test_num_transformer_levels_selects_coarsest_fpn_outputs(name, levels):
    out = build(name, num_transformer_levels=levels)(feats_for((64, 96)))
    assert [m.shape[-1] for m in out.multi_scale_features] == [96 // s for s in
                                                               (32, 16, 8, 4)[:levels]]
    if levels == 4:
        # the finest FPN output is the input of mask_features, not a separate map
        assert out.multi_scale_features[-1].shape[-2:] == out.mask_features.shape[-2:]


@pytest.mark.parametrize('name', list(DECODERS))
@pytest.mark.parametrize('kwargs, message', [
    (dict(strides=[8, 16, 32]), 'same length'),
    (dict(in_channels=[8, 16, 32]), 'same length'),
    (dict(num_transformer_levels=5), 'num_transformer_levels=5'),
    (dict(num_transformer_levels=0), 'num_transformer_levels=0'),
    (dict(strides=[32, 16, 8, 4]), 'must increase'),
], ids=['short-strides', 'short-in_channels', 'too-many-levels', 'zero-levels', 'coarse-first'])
def test_bad_configs_are_rejected(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build(name, **kwargs)


@pytest.mark.parametrize('name', list(DECODERS))
def test_wrong_number_of_inputs_is_rejected(name):
    with pytest.raises(ValueError, match='expects 4 feature maps, got 3'):
        build(name)(feats_for((64, 64))[1:])


def tiny_head(name: str, num_classes: int = 3) -> Mask2FormerDecodeHead:
    init_default_scope('mmseg_maskformer')
    torch.manual_seed(0)
    pixel_decoder = dict(type=name, feat_channels=FEAT, out_channels=OUT, **DECODERS[name])
    return MODELS.build(dict(
        type='Mask2FormerDecodeHead', num_classes=num_classes, in_channels=IN_CHANNELS,
        strides=STRIDES, pixel_decoder=pixel_decoder,
        transformer_decoder=dict(embed_dims=16, num_queries=5, num_heads=2, num_layers=2,
                                 feedforward_dims=32),
        criterion=dict(type='MaskFormerCriterion',
                       matcher=dict(type='HungarianPointMatcher', num_points=16),
                       num_points=16)))


def samples_for(size, num_classes: int = 3):
    samples = []
    for b in range(2):
        masks = torch.zeros(2, *size, dtype=torch.bool)
        masks[0, :size[0] // 2] = True
        masks[1, size[0] // 2:] = True
        sample = SegDataSample(metainfo=dict(img_shape=size, ori_shape=size,
                                             batch_input_shape=size))
        sample.gt_instances = InstanceData(labels=torch.tensor([b, num_classes - 1]),
                                           masks=masks)
        samples.append(sample)
    return samples


@pytest.mark.parametrize('name', list(DECODERS))
def test_plugs_into_mask2former_head(name):
    head = tiny_head(name)
    assert isinstance(head.pixel_decoder, CLASSES[name])
    assert head.predictor.num_levels == 3
    size = (64, 96)
    losses = head.loss(feats_for(size), samples_for(size))
    assert losses and all(bool(torch.isfinite(v)) for v in losses.values())
    sum(losses.values()).backward()
    decoder_grads = [p.grad for p in head.pixel_decoder.parameters()]
    assert all(g is not None for g in decoder_grads)
    head.eval()
    with torch.no_grad():
        cls_logits, mask_logits = head.predict(feats_for(size))
    assert cls_logits.shape == (2, 5, 4)
    assert mask_logits.shape == (2, 5, size[0] // 4, size[1] // 4)
