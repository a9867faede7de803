"""Tests of the multi-scale deformable-attention pixel decoder."""
import pytest
import torch

from mmseg_maskformer.models.layers.ms_deform_attn import MSDeformAttn
from mmseg_maskformer.models.pixel_decoders import PixelDecoderOutput
from mmseg_maskformer.models.pixel_decoders.msdeformattn_pixel_decoder import (
    MultiScaleDeformablePixelDecoder, channels_last_maps, reference_points)

IN_CHANNELS = [8, 16, 32, 64]
STRIDES = [4, 8, 16, 32]
IMG = (64, 96)  # non-square input


def _decoder(**kwargs) -> MultiScaleDeformablePixelDecoder:
    torch.manual_seed(0)
    cfg = dict(in_channels=IN_CHANNELS, strides=STRIDES, feat_channels=32, out_channels=24,
               num_encoder_layers=2, num_heads=4, num_points=2, feedforward_dims=64,
               num_groups=8)
    cfg.update(kwargs)
    return MultiScaleDeformablePixelDecoder(**cfg)


def _feats(b: int = 2, seed: int = 1, channels=IN_CHANNELS, strides=STRIDES):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(b, c, IMG[0] // s, IMG[1] // s, generator=gen)
            for c, s in zip(channels, strides)]


def test_output_shapes():
    decoder = _decoder()
    feats = _feats()
    mask_features, memories, _ = decoder(feats)
    assert mask_features.shape == (2, 24, IMG[0] // 4, IMG[1] // 4)
    # memories: the 3 transformer levels, coarse to fine (1/32, 1/16, 1/8)
    assert [tuple(m.shape) for m in memories] == [(2, 32, 2, 3), (2, 32, 4, 6), (2, 32, 8, 12)]
    assert bool(torch.isfinite(mask_features).all())
    assert all(bool(torch.isfinite(m).all()) for m in memories)


def test_returns_pixel_decoder_output():
    """The encoder output at the coarsest level is the official ``out[0]``."""
    out = _decoder()(_feats())
    assert isinstance(out, PixelDecoderOutput)
    assert len(out.multi_scale_features) == 3
    assert out.transformer_encoder_features is out.multi_scale_features[0]
    assert out.transformer_encoder_features.shape == (2, 32, IMG[0] // 32, IMG[1] // 32)

def test_each_input_is_used_at_its_level():
    decoder = _decoder()
    feats = [f.requires_grad_(True) for f in _feats()]
    mask_features, memories, _ = decoder(feats)
    # mask features depend on every input (the stride-4 one through adapter_1)
    mask_features.sum().backward(retain_graph=True)
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in feats)
    # the memories do not depend on the stride-4 input (not in the encoder)
    for f in feats:
        f.grad = None
    sum(m.sum() for m in memories).backward()
    assert feats[0].grad is None or feats[0].grad.abs().sum() == 0
    assert all(f.grad.abs().sum() > 0 for f in feats[1:])


def test_batch_independence():
    decoder = _decoder().eval()
    feats = _feats(b=2)
    mask_features, memories, _ = decoder(feats)
    single_mask, single_mem, _ = decoder([f[1:] for f in feats])
    torch.testing.assert_close(single_mask[0], mask_features[1], rtol=1e-4, atol=1e-5)
    for m, s in zip(memories, single_mem):
        torch.testing.assert_close(s[0], m[1], rtol=1e-4, atol=1e-5)


def test_reference_points_2x3():
    ref = reference_points([(2, 3)], batch_size=2, device=torch.device('cpu'))
    assert ref.shape == (2, 6, 1, 2)
    expected = torch.tensor([[1 / 6, 1 / 4], [1 / 2, 1 / 4], [5 / 6, 1 / 4], [1 / 6, 3 / 4],
                             [1 / 2, 3 / 4], [5 / 6, 3 / 4]])
    torch.testing.assert_close(ref[0, :, 0], expected)
    torch.testing.assert_close(ref[1], ref[0])


def test_reference_points_multi_level():
    shapes = [(2, 3), (1, 1), (4, 2)]
    ref = reference_points(shapes, batch_size=1, device=torch.device('cpu'))
    assert ref.shape == (1, 6 + 1 + 8, 3, 2)
    # the same point for every level
    for lvl in range(1, 3):
        torch.testing.assert_close(ref[:, :, lvl], ref[:, :, 0])
    torch.testing.assert_close(ref[0, 6, 0], torch.tensor([0.5, 0.5]))
    # level 3 (4 x 2): x in {1/4, 3/4}, y in {1/8, 3/8, 5/8, 7/8}, row-major
    torch.testing.assert_close(ref[0, 7:, 0, 0], torch.tensor([0.25, 0.75] * 4))
    torch.testing.assert_close(ref[0, 7:, 0, 1],
                               torch.tensor([1 / 8, 1 / 8, 3 / 8, 3 / 8, 5 / 8, 5 / 8, 7 / 8,
                                             7 / 8]))
    assert bool((ref > 0).all()) and bool((ref < 1).all())


def test_wrong_number_of_inputs():
    decoder = _decoder()
    with pytest.raises(ValueError):
        decoder(_feats()[1:])
    with pytest.raises(ValueError):
        _decoder(strides=[8, 16, 32])
    with pytest.raises(ValueError):
        _decoder(num_transformer_levels=5)


def test_parameter_names():
    decoder = _decoder()
    names = set(dict(decoder.named_parameters()))
    for name in ['transformer.level_embed', 'transformer.encoder.layers.0.self_attn.'
                 'sampling_offsets.weight', 'transformer.encoder.layers.1.self_attn.'
                 'attention_weights.bias', 'transformer.encoder.layers.0.self_attn.'
                 'value_proj.weight', 'transformer.encoder.layers.0.self_attn.output_proj.weight',
                 'transformer.encoder.layers.0.linear1.weight',
                 'transformer.encoder.layers.0.norm2.weight', 'adapter_1.weight',
                 'adapter_1.norm.weight', 'adapter_1.norm.bias', 'layer_1.weight',
                 'layer_1.norm.weight', 'mask_features.weight', 'mask_features.bias',
                 'input_proj.0.0.weight', 'input_proj.0.0.bias', 'input_proj.0.1.weight',
                 'input_proj.2.1.bias']:
        assert name in names, name
    # detectron2 Conv2d with a norm has no bias
    assert 'adapter_1.bias' not in names and 'layer_1.bias' not in names
    assert 'input_proj.3.0.weight' not in names and 'adapter_2.weight' not in names
    # input_proj is coarsest first: res5 (64 ch), res4 (32), res3 (16)
    assert [p[0].in_channels for p in decoder.input_proj] == [64, 32, 16]
    assert decoder.adapter_1.in_channels == 8
    assert decoder.transformer.level_embed.shape == (3, 32)
    # deformable attention keeps its ray initialisation after the encoder's xavier init
    attn = decoder.transformer.encoder.layers[0].self_attn
    assert isinstance(attn, MSDeformAttn)
    assert bool((attn.sampling_offsets.weight == 0).all())
    fresh = MSDeformAttn(32, 3, 4, 2)
    torch.testing.assert_close(attn.sampling_offsets.bias, fresh.sampling_offsets.bias)


def test_fpn_adapter_names_follow_official_order():
    """With 2 FPN levels, official Mask2Former names adapter_1/layer_1 after the finest
    input (res2) and adapter_2/layer_2 after the next one (res3): the convs are built
    fine to coarse (``enumerate(feature_channels[:num_fpn_levels])``) and only reversed
    for the forward pass. Official checkpoints then load 1:1."""
    decoder = _decoder(num_transformer_levels=2)
    assert decoder.num_fpn_levels == 2
    assert decoder.adapter_1.in_channels == IN_CHANNELS[0]
    assert decoder.adapter_2.in_channels == IN_CHANNELS[1]
    mask_features, memories, _ = decoder(_feats())
    assert mask_features.shape == (2, 24, IMG[0] // 4, IMG[1] // 4)
    assert [tuple(m.shape[-2:]) for m in memories] == [(2, 3), (4, 6)]


def test_registered():
    from mmseg_maskformer.registry import MODELS
    decoder = MODELS.build(dict(type='MultiScaleDeformablePixelDecoder', in_channels=IN_CHANNELS,
                                strides=STRIDES, feat_channels=32, out_channels=32,
                                num_encoder_layers=1, num_groups=8))
    assert isinstance(decoder, MultiScaleDeformablePixelDecoder)


@pytest.mark.parametrize('batch', [1, 2])
def test_channels_last_maps(batch):
    tokens = torch.randn(batch, 3 + 4 * 5, 6)[:, 3:]  # a level's slice of the sequence
    maps = channels_last_maps(tokens, 4, 5)
    assert maps.shape == (batch, 6, 4, 5)
    assert maps.data_ptr() == tokens.data_ptr()  # a view, no copy
    torch.testing.assert_close(maps, tokens.transpose(1, 2).reshape(batch, 6, 4, 5))
    # resizing keeps the layout (for one image the plain view came back NCHW)
    resized = torch.nn.functional.interpolate(maps, size=(8, 10), mode='bilinear')
    assert resized.is_contiguous(memory_format=torch.channels_last)


def test_channels_last_maps_gradient():
    tokens = torch.randn(1, 20, 6, requires_grad=True)
    weight = torch.randn(1, 6, 4, 5)
    (channels_last_maps(tokens, 4, 5) * weight).sum().backward()
    torch.testing.assert_close(tokens.grad, weight.flatten(2).transpose(1, 2))
