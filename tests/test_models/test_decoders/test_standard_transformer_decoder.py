"""Tests of the MaskFormer v1 standard (DETR) transformer decoder."""
import math
from typing import Optional

import pytest
import torch
from torch import Tensor, nn

from mmseg_maskformer.models.decoders import DETRDecoderLayer, StandardTransformerDecoder
from mmseg_maskformer.models.layers import SinePositionalEncoding

B, C, K, Q, HEADS, FFN = 2, 16, 3, 5, 2, 32
MEM_SIZE = (3, 4)
MASK_SIZE = (12, 16)


def _decoder(in_channels: int = C, **kwargs) -> StandardTransformerDecoder:
    torch.manual_seed(0)
    cfg = dict(in_channels=in_channels, num_classes=K, embed_dims=C, num_queries=Q,
               num_heads=HEADS, feedforward_dims=FFN, mask_dims=C)
    cfg.update(kwargs)
    return StandardTransformerDecoder(**cfg)


def _inputs(in_channels: int = C, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    memory = torch.randn(B, in_channels, *MEM_SIZE, generator=gen)
    mask_features = torch.randn(B, C, *MASK_SIZE, generator=gen)
    return memory, mask_features


# ---------------------------------------------------------------- reference
def _mha_reference(mha: nn.MultiheadAttention, q_in: Tensor, k_in: Tensor, v_in: Tensor) -> Tensor:
    """Multi-head attention written out with matmuls; inputs (B, N, C)."""
    w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
    b_q, b_k, b_v = mha.in_proj_bias.chunk(3)
    q, k, v = q_in @ w_q.T + b_q, k_in @ w_k.T + b_k, v_in @ w_v.T + b_v
    heads, dim = mha.num_heads, mha.embed_dim // mha.num_heads

    def split(x: Tensor) -> Tensor:  # (B, N, C) -> (B, heads, N, dim)
        return x.reshape(x.shape[0], x.shape[1], heads, dim).transpose(1, 2)

    attn = (split(q) @ split(k).transpose(-1, -2) / math.sqrt(dim)).softmax(-1)
    out = (attn @ split(v)).transpose(1, 2).reshape(q_in.shape[0], q_in.shape[1], -1)
    return out @ mha.out_proj.weight.T + mha.out_proj.bias


def _layer_reference(layer: DETRDecoderLayer, tgt: Tensor, memory: Tensor,
                     pos: Optional[Tensor], query_pos: Optional[Tensor]) -> Tensor:
    """The DETR post-norm layer, dropout 0: positions on q/k only, never on v."""
    qp = torch.zeros_like(tgt) if query_pos is None else query_pos
    mp = torch.zeros_like(memory) if pos is None else pos
    tgt = layer.norm1(tgt + _mha_reference(layer.self_attn, tgt + qp, tgt + qp, tgt))
    tgt = layer.norm2(tgt + _mha_reference(layer.multihead_attn, tgt + qp, memory + mp, memory))
    ffn = layer.linear2(torch.relu(layer.linear1(tgt)))
    return layer.norm3(tgt + ffn)


def _decoder_reference(dec: StandardTransformerDecoder, memory: Tensor, mask_features: Tensor):
    """The whole predictor: zero queries, sine pos on the keys, per-layer norm + heads."""
    pos = SinePositionalEncoding(C // 2, normalize=True)(memory).flatten(2).transpose(1, 2)
    src = dec.input_proj(memory).flatten(2).transpose(1, 2)
    query_pos = dec.query_embed.weight[None].repeat(memory.shape[0], 1, 1)
    tgt = torch.zeros_like(query_pos)
    cls_preds, mask_preds = [], []
    for layer in dec.transformer.decoder.layers:
        tgt = _layer_reference(layer, tgt, src, pos, query_pos)
        hs = dec.transformer.decoder.norm(tgt)
        cls_preds.append(dec.class_embed(hs))
        emb = dec.mask_embed(hs)  # (B, Q, D)
        mask_preds.append((emb @ mask_features.flatten(2)).reshape(*emb.shape[:2], *MASK_SIZE))
    return cls_preds, mask_preds


# --------------------------------------------------------------------- tests
def test_official_defaults():
    dec = StandardTransformerDecoder(in_channels=2048)
    assert dec.num_layers == 6 and dec.num_queries == 100
    layer = dec.transformer.decoder.layers[0]
    assert layer.self_attn.num_heads == 8 and layer.self_attn.embed_dim == 256
    assert layer.linear1.out_features == 2048 and not layer.pre_norm
    assert layer.dropout.p == 0.1 and layer.self_attn.dropout == 0.1
    assert dec.class_embed.out_features == 151
    assert isinstance(dec.input_proj, nn.Conv2d) and dec.input_proj.in_channels == 2048


@pytest.mark.parametrize('num_layers', [1, 6])
def test_output_lengths_and_shapes(num_layers):
    dec = _decoder(num_layers=num_layers).eval()
    cls_preds, mask_preds = dec(*_inputs())
    assert len(cls_preds) == num_layers and len(mask_preds) == num_layers
    for cls, mask in zip(cls_preds, mask_preds):
        assert cls.shape == (B, Q, K + 1) and mask.shape == (B, Q, *MASK_SIZE)
        assert bool(torch.isfinite(cls).all()) and bool(torch.isfinite(mask).all())
    if num_layers > 1:
        assert not torch.allclose(cls_preds[0], cls_preds[-1])


def test_default_has_six_intermediate_predictions():
    dec = _decoder().eval()
    cls_preds, mask_preds = dec(*_inputs())
    assert len(cls_preds) == 6 and len(mask_preds) == 6


def _official_keys(num_layers: int, with_input_proj: bool):
    """Keys of ``sem_seg_head.predictor.`` in official MaskFormer v1 checkpoints.

    From TransformerPredictor / Transformer (ENC_LAYERS=0: no encoder keys,
    post-norm: no encoder norm) / TransformerDecoderLayer / MLP.
    """
    keys = ['query_embed.weight']
    if with_input_proj:
        keys += ['input_proj.weight', 'input_proj.bias']
    for i in range(num_layers):
        p = f'transformer.decoder.layers.{i}.'
        for attn in ('self_attn', 'multihead_attn'):
            keys += [p + attn + s for s in ('.in_proj_weight', '.in_proj_bias',
                                            '.out_proj.weight', '.out_proj.bias')]
        for mod in ('linear1', 'linear2', 'norm1', 'norm2', 'norm3'):
            keys += [p + mod + '.weight', p + mod + '.bias']
    keys += ['transformer.decoder.norm.weight', 'transformer.decoder.norm.bias',
             'class_embed.weight', 'class_embed.bias']
    keys += [f'mask_embed.layers.{j}.{s}' for j in range(3) for s in ('weight', 'bias')]
    return keys


@pytest.mark.parametrize('in_channels, proj', [(2048, True), (256, False)])
def test_state_dict_keys_and_shapes_equal_the_official_ones(in_channels, proj):
    dec = StandardTransformerDecoder(in_channels=in_channels, num_classes=150)
    sd = dec.state_dict()
    assert sorted(sd) == sorted(_official_keys(6, proj))
    assert sd['transformer.decoder.layers.0.self_attn.in_proj_weight'].shape == (768, 256)
    assert sd['transformer.decoder.layers.5.linear1.weight'].shape == (2048, 256)
    assert sd['query_embed.weight'].shape == (100, 256)
    assert sd['class_embed.weight'].shape == (151, 256)
    assert sd['mask_embed.layers.2.weight'].shape == (256, 256)
    if proj:
        assert sd['input_proj.weight'].shape == (256, 2048, 1, 1)


def test_input_projection_rules():
    assert isinstance(_decoder().input_proj, nn.Identity)
    assert isinstance(_decoder(enforce_input_proj=True).input_proj, nn.Conv2d)
    dec = _decoder(in_channels=8).eval()
    assert isinstance(dec.input_proj, nn.Conv2d)
    cls_preds, mask_preds = dec(*_inputs(in_channels=8))
    assert cls_preds[-1].shape == (B, Q, K + 1) and mask_preds[-1].shape == (B, Q, *MASK_SIZE)


def test_layer_equals_torch_decoder_layer_without_positions():
    """Post-norm and pre-norm layers equal nn.TransformerDecoderLayer (no pos, dropout 0)."""
    for pre_norm in (False, True):
        torch.manual_seed(0)
        ours = DETRDecoderLayer(C, HEADS, FFN, dropout=0.0, pre_norm=pre_norm).eval()
        ref = nn.TransformerDecoderLayer(C, HEADS, FFN, dropout=0.0, batch_first=True,
                                         norm_first=pre_norm).eval()
        ref.load_state_dict(ours.state_dict())  # identical parameter names
        tgt, memory = torch.randn(B, Q, C), torch.randn(B, 7, C)
        torch.testing.assert_close(ours(tgt, memory), ref(tgt, memory))


def test_layer_with_positions_equals_the_hand_reference():
    torch.manual_seed(0)
    layer = DETRDecoderLayer(C, HEADS, FFN, dropout=0.0).eval()
    tgt, memory = torch.randn(B, Q, C), torch.randn(B, 7, C)
    pos, query_pos = torch.randn(B, 7, C), torch.randn(B, Q, C)
    out = layer(tgt, memory, pos=pos, query_pos=query_pos)
    torch.testing.assert_close(out, _layer_reference(layer, tgt, memory, pos, query_pos))
    # the positions really matter, and only where DETR puts them
    assert not torch.allclose(out, layer(tgt, memory))
    assert not torch.allclose(out, _layer_reference(layer, tgt, memory + pos, None, query_pos))


def test_decoder_equals_the_brute_force_reference():
    dec = _decoder(in_channels=8, dropout=0.0).eval()
    memory, mask_features = _inputs(in_channels=8)
    cls_preds, mask_preds = dec(memory, mask_features)
    ref_cls, ref_mask = _decoder_reference(dec, memory, mask_features)
    for a, b in zip(cls_preds, ref_cls):
        torch.testing.assert_close(a, b)
    for a, b in zip(mask_preds, ref_mask):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_queries_start_at_zero_and_query_embed_is_positional():
    """Every layer gets ``query_embed`` as query_pos; the first gets zero content."""
    dec = _decoder(dropout=0.0).eval()
    seen = []
    for layer in dec.transformer.decoder.layers:
        layer.register_forward_pre_hook(
            lambda m, args, kwargs: seen.append((args[0], kwargs['query_pos'])),
            with_kwargs=True)
    dec(*_inputs())
    assert len(seen) == 6
    torch.testing.assert_close(seen[0][0], torch.zeros(B, Q, C))
    assert seen[1][0].abs().sum() > 0
    for _, query_pos in seen:
        torch.testing.assert_close(query_pos, dec.query_embed.weight[None].expand(B, -1, -1))


def test_dropout_only_in_training():
    dec = _decoder()
    inputs = _inputs()
    dec.eval()
    a, b = dec(*inputs)[0][-1], dec(*inputs)[0][-1]
    torch.testing.assert_close(a, b)
    dec.train()
    torch.manual_seed(3)
    c = dec(*inputs)[0][-1]
    assert not torch.allclose(a, c)


def test_backward_reaches_every_parameter():
    dec = _decoder(in_channels=8, dropout=0.0)  # (attention dropout breaks the symmetry)
    with torch.no_grad():  # move the biases off their zero initialisation
        for p in dec.parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
    memory, mask_features = _inputs(in_channels=8)
    cls_preds, mask_preds = dec(memory, mask_features)
    (sum(c.sum() for c in cls_preds) + sum(m.square().mean() for m in mask_preds)).backward()
    # DETR property: layer 0 self-attends over zero content, so every value is the
    # value bias and the output ignores the attention weights and the input
    # projections (the official decoder behaves the same).
    degenerate = {'transformer.decoder.layers.0.self_attn.in_proj_weight'}
    for name, p in dec.named_parameters():
        assert p.grad is not None and bool(torch.isfinite(p.grad).all()), name
        reached = bool(p.grad.abs().max() > 1e-3)  # above float round-off
        assert reached != (name in degenerate), name


def test_input_checks():
    dec = _decoder()
    memory, mask_features = _inputs()
    with pytest.raises(ValueError, match='memory map of shape'):
        dec(torch.randn(B, C + 1, *MEM_SIZE), mask_features)
    with pytest.raises(ValueError, match='mask features of shape'):
        dec(memory, torch.randn(B, C + 1, *MASK_SIZE))
    with pytest.raises(ValueError, match='batch sizes differ'):
        dec(memory, mask_features[:1])
    with pytest.raises(ValueError, match='divisible by num_heads'):
        _decoder(num_heads=3)
    with pytest.raises(ValueError, match='num_layers'):
        _decoder(num_layers=0)


def test_reference_attention_matches_torch():
    """Sanity check of the hand-written attention used as the reference."""
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(C, HEADS, batch_first=True).eval()
    q, k, v = torch.randn(B, Q, C), torch.randn(B, 7, C), torch.randn(B, 7, C)
    torch.testing.assert_close(_mha_reference(mha, q, k, v), mha(q, k, v)[0])
