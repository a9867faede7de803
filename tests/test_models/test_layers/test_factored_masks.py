"""Tests of FactoredMasks against the full mask logits they stand for."""
import pytest
import torch

from mmseg_maskformer.models.layers import point_sample
from mmseg_maskformer.models.layers.factored_masks import (FactoredMasks, factored_product,
                                                           logits_of, masks_at_points,
                                                           matched_logits,
                                                           matched_logits_of_layers)

B, Q, C, H, W = 2, 6, 5, 7, 9


def _factors(seed: int = 0, requires_grad: bool = False):
    gen = torch.Generator().manual_seed(seed)
    embeds = torch.randn(B, Q, C, generator=gen, dtype=torch.float64)
    features = torch.randn(B, C, H, W, generator=gen, dtype=torch.float64)
    return embeds.requires_grad_(requires_grad), features.requires_grad_(requires_grad)


def test_logits_shape_and_indexing_follow_the_full_tensor():
    embeds, features = _factors()
    masks = FactoredMasks(embeds, features)
    full = torch.einsum('bqc,bchw->bqhw', embeds, features)
    assert masks.shape == (B, Q, H, W) and masks.batched
    torch.testing.assert_close(masks.logits(), full, rtol=0, atol=1e-12)
    image = masks[1]
    assert image.shape == (Q, H, W) and not image.batched
    torch.testing.assert_close(image.logits(), full[1], rtol=0, atol=1e-12)
    rows = torch.tensor([4, 0, 4])
    torch.testing.assert_close(image[rows].logits(), full[1][rows], rtol=0, atol=1e-12)
    torch.testing.assert_close(logits_of(image), full[1], rtol=0, atol=1e-12)
    assert logits_of(full) is full
    assert masks.float().embeds.dtype == torch.float32


@pytest.mark.parametrize('batched', [True, False])
@pytest.mark.parametrize('channels_last', [True, False])
def test_factored_product_equals_einsum_with_gradients_in_the_features_layout(
        batched, channels_last):
    embeds, features = _factors(4)
    if channels_last:
        features = features.contiguous(memory_format=torch.channels_last)
    if not batched:
        embeds, features = embeds[1], features[1]
    embeds.requires_grad_(True)
    features.requires_grad_(True)
    got = factored_product(embeds, features)
    want = torch.einsum('...qc,...chw->...qhw', embeds, features)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    weight = torch.randn_like(want)
    grads = torch.autograd.grad((got * weight).sum(), (embeds, features))
    want_grads = torch.autograd.grad((want * weight).sum(), (embeds, features))
    for g, w in zip(grads, want_grads):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-12)
    # the features' gradient has the features' own strides (no layout conversion)
    assert grads[1].stride() == features.stride()


def test_factored_product_under_bf16_autocast_matches_einsum():
    embeds, features = (t.float() for t in _factors(5))
    features = features.contiguous(memory_format=torch.channels_last)
    embeds.requires_grad_(True)
    features.requires_grad_(True)
    outs = []
    for fn in (factored_product, lambda e, f: torch.einsum('bqc,bchw->bqhw', e, f)):
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out = fn(embeds, features)
        assert out.dtype == torch.bfloat16
        grads = torch.autograd.grad(out.float().square().sum(), (embeds, features))
        assert [g.dtype for g in grads] == [torch.float32, torch.float32]
        outs.append([out.float(), *grads])
    for got, want in zip(*outs):
        torch.testing.assert_close(got, want, rtol=2e-2, atol=2e-2)


def test_factored_product_without_gradients_is_the_einsum():
    embeds, features = _factors(6)
    with torch.no_grad():
        out = factored_product(embeds.requires_grad_(True), features)
    assert out.grad_fn is None
    torch.testing.assert_close(out, torch.einsum('bqc,bchw->bqhw', embeds, features),
                               rtol=0, atol=0)


def test_mismatched_factors_are_refused():
    embeds, features = _factors()
    with pytest.raises(ValueError, match='do not factor'):
        FactoredMasks(embeds, features[:, :-1])
    with pytest.raises(ValueError, match='do not factor'):
        FactoredMasks(embeds[0], features)


def test_at_points_equals_point_sample_of_the_logits_including_outside_points():
    embeds, features = _factors(1)
    image = FactoredMasks(embeds, features)[0]
    points = torch.rand(1, 40, 2, dtype=torch.float64) * 1.4 - 0.2  # some outside [0, 1]
    want = point_sample(image.logits()[:, None], points.expand(Q, -1, -1))[:, 0]
    torch.testing.assert_close(masks_at_points(image, points), want, rtol=0, atol=1e-12)
    torch.testing.assert_close(masks_at_points(image.logits(), points), want, rtol=0,
                               atol=1e-12)
    with pytest.raises(ValueError, match='one image'):
        FactoredMasks(embeds, features).at_points(points)


@pytest.mark.parametrize('factored', [False, True])
def test_matched_logits_equal_per_image_selection_with_gradients(factored):
    embeds, features = _factors(2, requires_grad=True)
    queries = [torch.tensor([3, 1]), torch.tensor([0, 5, 2])]
    full = torch.einsum('bqc,bchw->bqhw', embeds, features)
    masks = FactoredMasks(embeds, features) if factored else full
    got = matched_logits(masks, queries)
    want = torch.cat([full[b][q] for b, q in enumerate(queries)])
    assert got.shape == (5, H, W)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    weight = torch.randn_like(want)
    grads = torch.autograd.grad((got * weight).sum(), (embeds, features), retain_graph=True)
    want_grads = torch.autograd.grad((want * weight).sum(), (embeds, features))
    for g, w in zip(grads, want_grads):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-12)


@pytest.mark.parametrize('factored', [False, True])
def test_matched_logits_of_no_queries_is_empty_and_keeps_the_graph(factored):
    embeds, features = _factors(3, requires_grad=True)
    empty = torch.empty(0, dtype=torch.long)
    masks = FactoredMasks(embeds, features) if factored else \
        torch.einsum('bqc,bchw->bqhw', embeds, features)
    got = matched_logits(masks, [empty, empty])
    assert got.shape == (0, H, W)
    grads = torch.autograd.grad(got.sum(), (embeds, features))
    assert all(float(g.abs().sum()) == 0.0 for g in grads)


@pytest.mark.parametrize('channels_last', [False, True])
def test_matched_logits_of_layers_equal_the_selected_full_logits_with_gradients(channels_last):
    gen = torch.Generator().manual_seed(9)
    features = torch.randn(B, C, H, W, generator=gen, dtype=torch.float64)
    if channels_last:
        features = features.contiguous(memory_format=torch.channels_last)
    features.requires_grad_(True)
    embeds = [torch.randn(B, Q, C, generator=gen, dtype=torch.float64).requires_grad_(True)
              for _ in range(3)]
    empty = torch.empty(0, dtype=torch.long)
    queries = [[torch.tensor([3, 1]), torch.tensor([0, 5, 2])],
               [empty, empty],  # a layer without matches
               [torch.tensor([4]), empty]]  # and one with an image without
    masks = [FactoredMasks(e, features) for e in embeds]
    got = matched_logits_of_layers(masks, queries)
    full = [torch.einsum('bqc,bchw->bqhw', e, features) for e in embeds]
    want = [torch.cat([f[b][q] for b, q in enumerate(layer)]) for f, layer in zip(full, queries)]
    assert [g.shape[0] for g in got] == [5, 0, 1]
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-12)
    weights = [torch.randn_like(w) for w in want]
    loss = sum((g * k).sum() for g, k in zip(got, weights))
    grads = torch.autograd.grad(loss, embeds + [features])
    want_loss = sum((w * k).sum() for w, k in zip(want, weights))
    want_grads = torch.autograd.grad(want_loss, embeds + [features])
    for g, w in zip(grads, want_grads):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-12)
    assert grads[-1].stride() == features.stride()


def test_matched_logits_of_layers_need_one_shared_features_tensor():
    embeds, features = _factors(10)
    queries = [[torch.tensor([0]), torch.tensor([1])]] * 2
    with pytest.raises(ValueError, match='sharing one features tensor'):
        matched_logits_of_layers([FactoredMasks(embeds, features),
                                  FactoredMasks(embeds, features.clone())], queries)
    with pytest.raises(ValueError, match='sharing one features tensor'):
        matched_logits_of_layers([FactoredMasks(embeds, features)[0]], [[torch.tensor([0])]])
