"""Tests of the FPN pixel decoder (official MaskFormer ``BasePixelDecoder``)."""
import math

import torch

from pixel_decoder_official_keys import official_fpn_keys
from mmseg_maskformer.models.pixel_decoders import FPNPixelDecoder

IN_CHANNELS = [8, 16, 32, 64]
STRIDES = [4, 8, 16, 32]
IMG = (64, 96)


def _decoder(**kwargs) -> FPNPixelDecoder:
    torch.manual_seed(0)
    cfg = dict(in_channels=IN_CHANNELS, strides=STRIDES, feat_channels=16, out_channels=12,
               num_groups=4)
    cfg.update(kwargs)
    return FPNPixelDecoder(**cfg)


def _feats(b: int = 2, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(b, c, IMG[0] // s, IMG[1] // s, generator=gen)
            for c, s in zip(IN_CHANNELS, STRIDES)]


def test_state_dict_matches_official_r50_names_and_shapes():
    decoder = FPNPixelDecoder()  # official R50 semantic setting: conv_dim = mask_dim = 256
    shapes = {k: tuple(v.shape) for k, v in decoder.state_dict().items()}
    assert shapes == official_fpn_keys([256, 512, 1024, 2048], 256, 256)


def test_state_dict_names_with_three_inputs():
    decoder = FPNPixelDecoder(in_channels=[16, 32, 64], strides=[8, 16, 32], feat_channels=16,
                              out_channels=12, num_groups=4)
    shapes = {k: tuple(v.shape) for k, v in decoder.state_dict().items()}
    assert shapes == official_fpn_keys([16, 32, 64], 16, 12)


def _upsample2(x: torch.Tensor) -> torch.Tensor:
    return x.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)


def test_forward_is_top_down_fpn_with_nearest_upsampling():
    decoder = _decoder().eval()
    feats = _feats()
    out = decoder(feats)
    with torch.no_grad():
        y = torch.relu(decoder.layer_4.norm(torch.conv2d(feats[3], decoder.layer_4.weight,
                                                         padding=1)))
        expected = [y]
        for i in (2, 1, 0):
            adapter = getattr(decoder, f'adapter_{i + 1}')
            layer = getattr(decoder, f'layer_{i + 1}')
            lateral = adapter.norm(torch.conv2d(feats[i], adapter.weight))
            y = torch.relu(layer.norm(torch.conv2d(lateral + _upsample2(y), layer.weight,
                                                   padding=1)))
            expected.append(y)
        mask = torch.conv2d(y, decoder.mask_features.weight, decoder.mask_features.bias,
                            padding=1)
    torch.testing.assert_close(out.mask_features, mask)
    for got, want in zip(out.multi_scale_features, expected[:3]):
        torch.testing.assert_close(got, want)
    assert out.transformer_encoder_features is None


def test_mask_features_at_the_finest_input_stride():
    decoder = FPNPixelDecoder(in_channels=IN_CHANNELS[1:], strides=STRIDES[1:], feat_channels=16,
                              out_channels=12, num_groups=4)
    out = decoder(_feats()[1:])
    assert out.mask_features.shape == (2, 12, IMG[0] // 8, IMG[1] // 8)
    assert [m.shape[-1] for m in out.multi_scale_features] == [3, 6, 12]


def test_c2_xavier_fill_initialisation():
    decoder = _decoder(feat_channels=32, num_groups=8)
    convs = [decoder.adapter_1, decoder.adapter_3, decoder.layer_1, decoder.layer_4,
             decoder.mask_features]
    for conv in convs:
        bound = math.sqrt(3.0 / conv.weight[0].numel())  # kaiming_uniform with a=1
        largest = float(conv.weight.detach().abs().max())
        assert 0.9 * bound < largest <= bound
    assert decoder.adapter_1.bias is None and decoder.layer_4.bias is None
    assert bool((decoder.mask_features.bias == 0).all())
    assert decoder.layer_2.norm.num_groups == 8
    assert bool((decoder.layer_2.norm.weight == 1).all())


def test_batch_independence():
    decoder = _decoder().eval()
    feats = _feats()
    out = decoder(feats)
    single = decoder([f[1:] for f in feats])
    torch.testing.assert_close(single.mask_features[0], out.mask_features[1])
