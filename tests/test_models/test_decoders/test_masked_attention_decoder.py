"""Tests of the Mask2Former masked-attention transformer decoder."""
import pytest
import torch

from mmseg_maskformer.models.decoders.masked_attention_decoder import (MaskedAttentionDecoder,
                                                                       masked_attention_mask)
from mmseg_maskformer.models.layers.factored_masks import FactoredMasks

B, C, K, Q, HEADS = 2, 16, 3, 5, 2
SIZES = [(2, 2), (4, 3), (8, 6)]  # coarse to fine, non-square
MASK_SIZE = (16, 12)


def _decoder(num_layers: int = 4, in_channels: int = C, **kwargs) -> MaskedAttentionDecoder:
    torch.manual_seed(0)
    return MaskedAttentionDecoder(in_channels=in_channels, num_classes=K, embed_dims=C,
                                  num_queries=Q, num_heads=HEADS, num_layers=num_layers,
                                  feedforward_dims=32, mask_dims=C, num_levels=3, **kwargs)


def _inputs(in_channels: int = C, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    memories = [torch.randn(B, in_channels, h, w, generator=gen) for h, w in SIZES]
    mask_features = torch.randn(B, C, *MASK_SIZE, generator=gen)
    return memories, mask_features


@pytest.mark.parametrize('num_layers', [1, 4])
def test_output_lengths_and_shapes(num_layers):
    decoder = _decoder(num_layers)
    cls_preds, mask_preds = decoder(*_inputs())
    assert len(cls_preds) == num_layers + 1 and len(mask_preds) == num_layers + 1
    for cls, mask in zip(cls_preds, mask_preds):
        assert cls.shape == (B, Q, K + 1)
        assert mask.shape == (B, Q, *MASK_SIZE)
        assert bool(torch.isfinite(cls).all()) and bool(torch.isfinite(mask).all())
    # the layers really change the predictions
    assert not torch.allclose(cls_preds[0], cls_preds[-1])


def test_input_projection_when_widths_differ():
    decoder = _decoder(2, in_channels=8)
    assert all(isinstance(p, torch.nn.Conv2d) for p in decoder.input_proj)
    cls_preds, mask_preds = decoder(*_inputs(in_channels=8))
    assert len(cls_preds) == 3 and mask_preds[-1].shape == (B, Q, *MASK_SIZE)
    same = _decoder(2)
    assert all(isinstance(p, torch.nn.Identity) for p in same.input_proj)
    forced = _decoder(2, enforce_input_proj=True)
    assert all(isinstance(p, torch.nn.Conv2d) for p in forced.input_proj)


def test_wrong_number_of_levels():
    decoder = _decoder(2)
    memories, mask_features = _inputs()
    with pytest.raises(ValueError):
        decoder(memories[:2], mask_features)


def test_levels_rotate_and_masks_follow_previous_prediction(monkeypatch):
    """Layer i attends to level i % 3 with the mask of prediction i at that size."""
    decoder = _decoder(4)
    memories, mask_features = _inputs()
    seen = []
    for i, layer in enumerate(decoder.transformer_cross_attention_layers):
        orig = layer.forward

        def record(x, memory, attn_mask=None, pos=None, query_pos=None, _i=i, _orig=orig):
            seen.append((_i, memory.shape, attn_mask.clone(), pos.shape))
            return _orig(x, memory, attn_mask=attn_mask, pos=pos, query_pos=query_pos)

        monkeypatch.setattr(layer, 'forward', record)
    _, mask_preds = decoder(memories, mask_features)
    assert [s[0] for s in seen] == [0, 1, 2, 3]
    for i, mem_shape, attn_mask, pos_shape in seen:
        h, w = SIZES[i % 3]
        assert mem_shape == (B, h * w, C) and pos_shape == (B, h * w, C)
        # one mask for all heads
        assert attn_mask.shape == (B, Q, h * w) and attn_mask.dtype == torch.bool
        expected = masked_attention_mask(mask_preds[i], (h, w))
        assert torch.equal(attn_mask, expected)


def _record_attention_masks(decoder, monkeypatch):
    seen = []
    for layer in decoder.transformer_cross_attention_layers:
        orig = layer.forward

        def record(x, memory, attn_mask=None, pos=None, query_pos=None, _orig=orig):
            seen.append(attn_mask.clone())
            return _orig(x, memory, attn_mask=attn_mask, pos=pos, query_pos=query_pos)

        monkeypatch.setattr(layer, 'forward', record)
    return seen


def _float64_case(seed, mask_size):
    """A float64 decoder, its memories, mask features of the given size and the
    generator that made them (for further draws)."""
    decoder = _decoder(4).double()  # built first: it seeds the global generator
    gen = torch.Generator().manual_seed(seed)
    memories = [m.double() for m in _inputs()[0]]
    features = torch.randn(B, C, *mask_size, generator=gen, dtype=torch.float64)
    return decoder, memories, features, gen


@pytest.mark.parametrize('mask_size', [MASK_SIZE, (13, 11)])
def test_final_only_equals_the_last_prediction(mask_size, monkeypatch):
    """Intermediate masks made at the attention size give the same attention masks."""
    decoder, memories, mask_features, _ = _float64_case(3, mask_size)
    seen = _record_attention_masks(decoder, monkeypatch)
    with torch.no_grad():
        cls_all, mask_all = decoder(memories, mask_features)
        full_masks = list(seen)
        seen.clear()
        cls_one, mask_one = decoder(memories, mask_features, final_only=True)
    assert len(cls_one) == len(mask_one) == 1
    assert len(seen) == len(full_masks) == 4
    for fast, full in zip(seen, full_masks):
        assert torch.equal(fast, full)
    # the masks really restrict the attention (neither all blocked nor all open)
    assert any(bool(m.any()) and not bool(m.all()) for m in full_masks)
    torch.testing.assert_close(cls_one[0], cls_all[-1], rtol=0, atol=1e-10)
    torch.testing.assert_close(mask_one[0], mask_all[-1], rtol=0, atol=1e-10)


def test_final_only_in_float32_agrees_within_rounding():
    decoder = _decoder(4)
    memories, mask_features = _inputs()
    with torch.no_grad():
        cls_all, mask_all = decoder(memories, mask_features)
        cls_one, mask_one = decoder(memories, mask_features, final_only=True)
    torch.testing.assert_close(cls_one[0], cls_all[-1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mask_one[0], mask_all[-1], rtol=1e-5, atol=1e-5)


def test_gradient_flows():
    decoder = _decoder(3)
    memories, mask_features = _inputs()
    for m in memories:
        m.requires_grad_(True)
    mask_features.requires_grad_(True)
    cls_preds, mask_preds = decoder(memories, mask_features)
    (sum(c.sum() for c in cls_preds) + sum(m.pow(2).mean() for m in mask_preds)).backward()
    for name in ('query_feat', 'query_embed', 'level_embed'):
        grad = getattr(decoder, name).weight.grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert decoder.class_embed.weight.grad.abs().sum() > 0
    assert mask_features.grad.abs().sum() > 0
    for m in memories:
        assert m.grad is not None and m.grad.abs().sum() > 0


def test_masked_attention_mask_semantics():
    # (B=2, Q=3, 2x2) logits, size unchanged so no interpolation effects
    logits = torch.tensor([
        [[[1.0, -1.0], [0.0, -0.5]],     # mixed: blocked where < 0
         [[-1.0, -2.0], [-3.0, -0.1]],   # all negative -> all allowed
         [[2.0, 3.0], [4.0, 5.0]]],      # all positive -> all allowed
        [[[-1.0, 1.0], [1.0, -1.0]],
         [[-4.0, -4.0], [-4.0, 0.5]],
         [[-1.0, -1.0], [-1.0, -1.0]]],
    ])
    heads = 3
    mask = masked_attention_mask(logits, (2, 2), heads)
    assert mask.shape == (2 * heads, 3, 4) and mask.dtype == torch.bool
    per_image = torch.tensor([
        [[False, True, False, True], [False] * 4, [False] * 4],
        [[True, False, False, True], [True, True, True, False], [False] * 4],
    ])
    for b in range(2):
        for h in range(heads):
            # batch-major: row b * heads + h, as nn.MultiheadAttention expects
            assert torch.equal(mask[b * heads + h], per_image[b]), (b, h)
    assert torch.equal(masked_attention_mask(logits, (2, 2)), per_image)  # shared by the heads


def test_masked_attention_mask_resizes_bilinear():
    logits = torch.full((1, 1, 4, 4), -5.0)
    logits[0, 0, :2, :2] = 5.0  # top-left quadrant foreground
    mask = masked_attention_mask(logits, (2, 2), 1)
    assert mask[0, 0].tolist() == [False, True, True, True]
    # upsampling: foreground only in the top-left region
    mask_up = masked_attention_mask(logits, (8, 8), 2).view(2, 1, 8, 8)
    assert torch.equal(mask_up[0], mask_up[1])
    assert not bool(mask_up[0, 0, :4, :4].any()) and bool(mask_up[0, 0, 4:, :].all())
    assert bool(mask_up[0, 0, :, 4:].all())


def test_masked_attention_mask_no_grad():
    logits = torch.randn(1, 2, 4, 4, requires_grad=True)
    mask = masked_attention_mask(logits, (2, 2), 2)
    assert not mask.requires_grad


def test_mask_convention_matches_cross_attention():
    """Memory at positions blocked for a query (in its own image) cannot change it."""
    from mmseg_maskformer.models.layers import CrossAttentionLayer
    torch.manual_seed(0)
    layer = CrossAttentionLayer(C, HEADS).eval()
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(B, Q, C, generator=gen)
    memory = torch.randn(B, 16, C, generator=gen)
    logits = torch.randn(B, Q, 4, 4, generator=gen)
    logits[1] = -logits[0]  # different foreground in the two images
    attn_mask = masked_attention_mask(logits, (4, 4), HEADS)
    out = layer(x, memory, attn_mask=attn_mask)
    blocked = logits.flatten(2) < 0
    for b in range(B):
        for q in range(Q):
            if bool(blocked[b, q].all()) or not bool(blocked[b, q].any()):
                continue
            changed = memory.clone()
            changed[b, blocked[b, q]] += 10.0 * torch.randn(int(blocked[b, q].sum()), C,
                                                            generator=gen)
            new = layer(x, changed, attn_mask=attn_mask)
            torch.testing.assert_close(new[b, q], out[b, q])
            # allowed positions do matter
            changed = memory.clone()
            changed[b, ~blocked[b, q]] += 10.0
            assert not torch.allclose(layer(x, changed, attn_mask=attn_mask)[b, q], out[b, q])


@pytest.mark.parametrize('mask_size', [MASK_SIZE, (13, 11)])
def test_factored_masks_equal_the_full_logits_with_gradients(mask_size, monkeypatch):
    """Training's factored output: same attention masks, logits and gradients."""
    decoder, memories, features, gen = _float64_case(4, mask_size)
    seen = _record_attention_masks(decoder, monkeypatch)
    full_features = features.clone().requires_grad_()
    cls_all, mask_all = decoder(memories, full_features)
    full_masks = list(seen)
    seen.clear()
    fact_features = features.clone().requires_grad_()
    cls_fact, mask_fact = decoder(memories, fact_features, factored=True)
    assert len(mask_fact) == len(mask_all) == 5
    assert all(isinstance(m, FactoredMasks) and m.features is fact_features for m in mask_fact)
    for fast, full in zip(seen, full_masks):
        assert torch.equal(fast, full)
    weights = [torch.randn(B, Q, *mask_size, generator=gen, dtype=torch.float64)
               for _ in mask_all]
    for a, b in zip(cls_fact, cls_all):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    for fact, full in zip(mask_fact, mask_all):
        assert fact.shape == tuple(full.shape)
        torch.testing.assert_close(fact.logits(), full, rtol=0, atol=1e-10)
    loss_full = sum((w * m).sum() for w, m in zip(weights, mask_all))
    loss_fact = sum((w * m.logits()).sum() for w, m in zip(weights, mask_fact))
    params = [p for p in decoder.parameters() if p.requires_grad]
    grads_full = torch.autograd.grad(loss_full, [full_features] + params, allow_unused=True)
    grads_fact = torch.autograd.grad(loss_fact, [fact_features] + params, allow_unused=True)
    for a, b in zip(grads_fact, grads_full):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=0, atol=1e-9)
