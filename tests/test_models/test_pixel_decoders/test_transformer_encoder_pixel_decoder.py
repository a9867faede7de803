"""Tests of the transformer-encoder pixel decoder (MaskFormer "+ 6 Enc")."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pixel_decoder_official_keys import official_transformer_encoder_keys
from mmseg_maskformer.models.layers import SinePositionalEncoding
from mmseg_maskformer.models.pixel_decoders import TransformerEncoderPixelDecoder
from mmseg_maskformer.models.pixel_decoders.transformer_encoder_pixel_decoder import \
    TransformerEncoderLayer

IN_CHANNELS = [8, 16, 32, 64]
STRIDES = [4, 8, 16, 32]
IMG = (64, 96)


def _decoder(**kwargs) -> TransformerEncoderPixelDecoder:
    torch.manual_seed(0)
    cfg = dict(in_channels=IN_CHANNELS, strides=STRIDES, feat_channels=16, out_channels=12,
               num_encoder_layers=2, num_heads=2, feedforward_dims=32, num_groups=4)
    cfg.update(kwargs)
    return TransformerEncoderPixelDecoder(**cfg)


def _feats(b: int = 2, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(b, c, IMG[0] // s, IMG[1] // s, generator=gen)
            for c, s in zip(IN_CHANNELS, STRIDES)]


def test_defaults_and_state_dict_match_official_r50():
    decoder = TransformerEncoderPixelDecoder()
    layers = decoder.transformer.encoder.layers
    assert len(layers) == 6
    assert layers[0].self_attn.num_heads == 8
    assert layers[0].self_attn.dropout == 0.1 and layers[0].dropout.p == 0.1
    assert not layers[0].pre_norm and decoder.transformer.encoder.norm is None
    shapes = {k: tuple(v.shape) for k, v in decoder.state_dict().items()}
    assert shapes == official_transformer_encoder_keys([256, 512, 1024, 2048], 256, 256, 6, 2048)


def test_state_dict_pre_norm_adds_final_norm():
    decoder = _decoder(pre_norm=True)
    shapes = {k: tuple(v.shape) for k, v in decoder.state_dict().items()}
    assert shapes == official_transformer_encoder_keys(IN_CHANNELS, 16, 12, 2, 32, pre_norm=True)


@pytest.mark.parametrize('pre_norm', [False, True])
def test_encoder_layer_equals_torch_layer_without_position(pre_norm):
    """With zero positions our layer is torch's encoder layer (same parameter names)."""
    torch.manual_seed(0)
    ours = TransformerEncoderLayer(16, 2, 32, dropout=0.0, pre_norm=pre_norm).eval()
    ref = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True,
                                     norm_first=pre_norm).eval()
    ours.load_state_dict(ref.state_dict())
    src = torch.randn(2, 7, 16)
    torch.testing.assert_close(ours(src, torch.zeros_like(src)), ref(src))


def test_encoder_layer_adds_position_to_queries_and_keys_only():
    torch.manual_seed(0)
    layer = TransformerEncoderLayer(16, 2, 32, dropout=0.0).eval()
    src, pos = torch.randn(2, 7, 16), torch.randn(2, 7, 16)
    with torch.no_grad():
        w_q, w_k, w_v = layer.self_attn.in_proj_weight.chunk(3)
        b_q, b_k, b_v = layer.self_attn.in_proj_bias.chunk(3)
        heads = lambda x: x.unflatten(-1, (2, 8)).transpose(1, 2)  # noqa: E731
        q = heads(F.linear(src + pos, w_q, b_q))
        k = heads(F.linear(src + pos, w_k, b_k))
        v = heads(F.linear(src, w_v, b_v))
        attn = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(8), -1) @ v
        attn = layer.self_attn.out_proj(attn.transpose(1, 2).flatten(2))
        x = layer.norm1(src + attn)
        expected = layer.norm2(x + layer.linear2(F.relu(layer.linear1(x))))
    torch.testing.assert_close(layer(src, pos), expected)


def test_encoder_output_feeds_the_top_conv():
    decoder = _decoder().eval()
    feats = _feats()
    out = decoder(feats)
    with torch.no_grad():
        x = feats[-1]
        pos = SinePositionalEncoding(8, normalize=True)(x)
        tokens = decoder.input_proj(x).flatten(2).transpose(1, 2)
        pos = pos.flatten(2).transpose(1, 2)
        for layer in decoder.transformer.encoder.layers:
            tokens = layer(tokens, pos)
        encoded = tokens.transpose(1, 2).reshape(2, 16, 2, 3)
    torch.testing.assert_close(out.transformer_encoder_features, encoded)
    torch.testing.assert_close(out.multi_scale_features[0], decoder.layer_4(encoded))
    assert out.multi_scale_features[0].shape == (2, 16, 2, 3)


def test_initialisation_follows_official():
    decoder = _decoder()
    attn = decoder.transformer.encoder.layers[1].self_attn
    bound = math.sqrt(6.0 / (16 + 48))  # xavier over the (3C, C) in_proj_weight
    assert float(attn.in_proj_weight.detach().abs().max()) <= bound
    assert bool((attn.in_proj_bias == 0).all()) and bool((attn.out_proj.bias == 0).all())
    linear1 = decoder.transformer.encoder.layers[0].linear1
    assert float(linear1.weight.detach().abs().max()) <= math.sqrt(6.0 / (16 + 32))
    # c2_xavier_fill on the input projection and the replaced top conv
    assert bool((decoder.input_proj.bias == 0).all())
    assert float(decoder.input_proj.weight.detach().abs().max()) <= math.sqrt(3.0 / 64)
    assert decoder.layer_4.in_channels == 16 and decoder.layer_4.bias is None


def test_dropout_only_in_training():
    decoder = _decoder(dropout=0.5)
    feats = _feats()
    decoder.train()
    a = decoder(feats).transformer_encoder_features
    b = decoder(feats).transformer_encoder_features
    assert not torch.allclose(a, b)
    decoder.eval()
    with torch.no_grad():
        torch.testing.assert_close(decoder(feats).mask_features, decoder(feats).mask_features)


def test_no_padding_mask_like_official():
    """Every position is attended to: changing the bottom-right (padding) changes the top-left."""
    decoder = _decoder().eval()
    feats = _feats()
    padded = [f.clone() for f in feats]
    padded[-1][..., -1, -1] = 0.0
    with torch.no_grad():
        a = decoder(feats).transformer_encoder_features[..., 0, 0]
        b = decoder(padded).transformer_encoder_features[..., 0, 0]
    assert not torch.allclose(a, b)


def test_feat_channels_must_fit_heads():
    with pytest.raises(ValueError, match='divisible by num_heads=3'):
        _decoder(num_heads=3)
