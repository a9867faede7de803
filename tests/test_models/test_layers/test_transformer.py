"""Tests of the shared transformer sub-layers."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmseg_maskformer.models.layers import FFNLayer, feed_forward
from mmseg_maskformer.models.layers.transformer import (CrossAttentionLayer, inference_linear,
                                                        multihead_attention)


def _graph_names(tensor: torch.Tensor) -> set:
    """Names of every autograd node behind ``tensor``."""
    names, stack, seen = set(), [tensor.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        stack.extend(next_fn for next_fn, _ in node.next_functions)
    return names


def test_feed_forward_equals_linear_relu_linear_with_gradients():
    torch.manual_seed(0)
    linear1, linear2 = nn.Linear(8, 16).double(), nn.Linear(16, 6).double()
    x = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
    out = feed_forward(x, linear1, linear2, nn.Identity())
    ref_x = x.detach().clone().requires_grad_()
    ref = linear2(F.relu(linear1(ref_x)))
    assert out.shape == (3, 5, 6)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, (x, linear1.weight, linear2.weight), grad)
    want = torch.autograd.grad(ref, (ref_x, linear1.weight, linear2.weight), grad)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-12)


def test_feed_forward_relu_in_place_does_not_rebuild_a_view_in_backward():
    """An in-place op on a view of the matmul output would add CopySlices."""
    linear1, linear2 = nn.Linear(4, 8), nn.Linear(8, 4)
    out = feed_forward(torch.randn(2, 3, 4, requires_grad=True), linear1, linear2,
                       nn.Identity())
    names = _graph_names(out)
    assert 'CopySlices' not in names and 'AsStridedBackward0' not in names
    assert any(name.startswith('Relu') for name in names)


def test_feed_forward_accepts_a_non_contiguous_input():
    linear1, linear2 = nn.Linear(4, 8), nn.Linear(8, 4)
    x = torch.randn(5, 2, 4).transpose(0, 1)
    torch.testing.assert_close(feed_forward(x, linear1, linear2, nn.Identity()),
                               linear2(F.relu(linear1(x))))


def test_ffn_layer_is_post_norm_residual():
    layer = FFNLayer(8, 16).eval()
    x = torch.randn(2, 3, 8)
    ref = layer.norm(x + layer.linear2(F.relu(layer.linear1(x))))
    torch.testing.assert_close(layer(x), ref)


@pytest.mark.parametrize('rows', [7, 8, 9, 30])
def test_feed_forward_without_autograd_runs_in_chunks_with_the_same_output(rows):
    torch.manual_seed(1)
    linear1, linear2 = nn.Linear(4, 16), nn.Linear(16, 3)
    x = torch.randn(rows, 2, 4).transpose(0, 1)  # 2 * rows rows, not contiguous
    ref = linear2(F.relu(linear1(x)))
    calls = []
    linear1.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    with torch.no_grad():
        out = feed_forward(x, linear1, linear2, nn.Identity(), chunk_rows=8)
    assert calls == [min(8, 2 * rows - s) for s in range(0, 2 * rows, 8)]
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)
    calls.clear()
    out = feed_forward(x, linear1, linear2, nn.Identity(), chunk_rows=8)  # with autograd
    assert calls == [2 * rows] and out.requires_grad


def _attention_inputs(b=2, q=5, s=7, c=16, heads=4, seed=0):
    torch.manual_seed(seed)
    attn = nn.MultiheadAttention(c, heads, batch_first=True).double()
    nn.init.normal_(attn.in_proj_bias)
    query, key, value = (torch.randn(b, n, c, dtype=torch.float64, requires_grad=True)
                         for n in (q, s, s))
    blocked = torch.rand(b, q, s) < 0.5
    blocked[:, 0] = False  # no row fully blocked (the decoder never makes one)
    blocked[0, 1, :-1] = True
    return attn, query, key, value, blocked


@pytest.mark.parametrize('mask', ['none', 'shared', 'per_head'])
def test_multihead_attention_equals_nn_multihead_attention(mask):
    attn, query, key, value, blocked = _attention_inputs()
    heads = attn.num_heads
    per_head = blocked.repeat_interleave(heads, dim=0)
    if mask == 'per_head':
        per_head[1] = False  # a head of image 0 with its own mask
    ours_mask = {'none': None, 'shared': blocked, 'per_head': per_head}[mask]
    ref_mask = None if mask == 'none' else per_head
    out = multihead_attention(attn, query, key, value, ours_mask)
    expected = attn(query, key, value, attn_mask=ref_mask, need_weights=False)[0]
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    grads = torch.autograd.grad(out.square().sum(), [query, key, value, attn.in_proj_weight])
    ref_grads = torch.autograd.grad(expected.square().sum(),
                                    [query, key, value, attn.in_proj_weight])
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_multihead_attention_rejects_bad_masks_and_modules():
    attn, query, key, value, blocked = _attention_inputs()
    with pytest.raises(ValueError, match='attention mask of shape'):
        multihead_attention(attn, query, key, value, blocked[:1].repeat(3, 1, 1))
    seq_first = nn.MultiheadAttention(16, 4)
    with pytest.raises(ValueError, match='batch_first'):
        multihead_attention(seq_first, query.float(), key.float(), value.float())


def test_cross_attention_layer_takes_a_shared_mask():
    _, query, key, value, blocked = _attention_inputs()
    layer = CrossAttentionLayer(16, 4).double()
    shared = layer(query, key, attn_mask=blocked)
    repeated = layer(query, key, attn_mask=blocked.repeat_interleave(4, dim=0))
    torch.testing.assert_close(shared, repeated, rtol=0, atol=1e-14)


@pytest.mark.parametrize('shape', [(7, 5), (2, 3, 5), (0, 5)])
def test_inference_linear_equals_linear(shape):
    torch.manual_seed(0)
    linear = nn.Linear(5, 4).double()
    x = torch.randn(*shape, dtype=torch.float64)
    with torch.no_grad():
        got = inference_linear(x, linear)
    torch.testing.assert_close(got, linear(x), rtol=0, atol=1e-14)
    assert got.shape == (*shape[:-1], 4)
    got.add_(1.0)  # its own tensor: the input and the weights are untouched
    torch.testing.assert_close(inference_linear(x, linear).detach(), linear(x).detach())


def test_inference_linear_with_autograd_or_without_bias_is_the_layer():
    torch.manual_seed(0)
    linear = nn.Linear(5, 4)
    x = torch.randn(3, 5)
    out = inference_linear(x, linear)
    assert out.grad_fn is not None
    torch.testing.assert_close(out, linear(x), rtol=0, atol=0)
    no_bias = nn.Linear(5, 4, bias=False)
    with torch.no_grad():
        torch.testing.assert_close(inference_linear(x, no_bias), no_bias(x), rtol=0, atol=0)
