"""Tests of the pure-PyTorch multi-scale deformable attention and MSDeformAttn."""
import pytest
import torch
from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch

from bilinear_reference import bilinear_zero_pad
from mmseg_maskformer.models.layers.ms_deform_attn import (MSDeformAttn, flatten_levels,
                                                           ms_deform_attn_core)

SHAPES = [(6, 5), (3, 4), (2, 2)]  # three levels of different, non-square sizes


def _inputs(seed: int, dtype=torch.float32, b: int = 2, q: int = 5, m: int = 2, d: int = 3,
            p: int = 4, shapes=SHAPES):
    """Random value / locations (partly outside [0, 1]) / softmax weights."""
    gen = torch.Generator().manual_seed(seed)
    spatial_shapes = torch.as_tensor(shapes, dtype=torch.long)
    num_levels = len(shapes)
    s = sum(h * w for h, w in shapes)
    value = torch.randn(b, s, m, d, generator=gen, dtype=dtype)
    locations = torch.rand(b, q, m, num_levels, p, 2, generator=gen, dtype=dtype) * 1.6 - 0.3
    logits = torch.randn(b, q, m, num_levels * p, generator=gen, dtype=dtype)
    weights = logits.softmax(-1).view(b, q, m, num_levels, p)
    return value, spatial_shapes, locations, weights


def test_core_matches_mmcv_pytorch():
    value, shapes, locations, weights = _inputs(0)
    # make sure some locations really are outside [0, 1]
    assert bool((locations < 0).any()) and bool((locations > 1).any())
    out = ms_deform_attn_core(value, shapes, locations, weights)
    ref = multi_scale_deformable_attn_pytorch(value, shapes, locations, weights)
    assert out.shape == (2, 5, 2 * 3)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)


def test_core_gradients_match_mmcv_pytorch():
    value, shapes, locations, weights = _inputs(1, dtype=torch.float64)
    grad_out = torch.randn(2, 5, 6, generator=torch.Generator().manual_seed(9),
                           dtype=torch.float64)

    def grads(fn):
        v, loc, w = (t.clone().requires_grad_(True) for t in (value, locations, weights))
        (fn(v, shapes, loc, w) * grad_out).sum().backward()
        return v.grad, loc.grad, w.grad

    ours = grads(ms_deform_attn_core)
    ref = grads(multi_scale_deformable_attn_pytorch)
    for g_ours, g_ref in zip(ours, ref):
        assert g_ours is not None and bool(g_ours.abs().sum() > 0)
        torch.testing.assert_close(g_ours, g_ref, rtol=1e-7, atol=1e-9)


def test_core_gradcheck():
    value, shapes, locations, weights = _inputs(2, dtype=torch.float64, b=1, q=2, m=2, d=2, p=2,
                                                shapes=[(3, 2), (2, 2)])
    inputs = tuple(t.requires_grad_(True) for t in (value, locations, weights))
    assert torch.autograd.gradcheck(lambda v, loc, w: ms_deform_attn_core(v, shapes, loc, w),
                                    inputs, eps=1e-6, atol=1e-5)


def test_core_one_element_by_hand():
    value, shapes, locations, weights = _inputs(3, dtype=torch.float64)
    out = ms_deform_attn_core(value, shapes, locations, weights)
    sizes = [h * w for h, w in SHAPES]
    levels = value.split(sizes, dim=1)
    m, d = value.shape[2], value.shape[3]
    for b, qi, head, ch in [(0, 0, 0, 0), (1, 3, 1, 2), (0, 4, 1, 1)]:
        expected = 0.0
        for lvl, (h, w) in enumerate(SHAPES):
            img = levels[lvl][b, :, head, ch].view(h, w)
            for pt in range(locations.shape[4]):
                x, y = locations[b, qi, head, lvl, pt].tolist()
                expected += float(weights[b, qi, head, lvl, pt]) * bilinear_zero_pad(img, x, y)
        # output channels are head-major: head * D + channel
        assert out[b, qi, head * d + ch].item() == pytest.approx(expected, abs=1e-10)
    assert out.shape[-1] == m * d


def test_core_all_outside_is_zero():
    value, shapes, locations, weights = _inputs(4)
    far = torch.full_like(locations, 2.0)
    out = ms_deform_attn_core(value, shapes, far, weights)
    torch.testing.assert_close(out, torch.zeros_like(out))


def test_msdeformattn_init_ray_pattern():
    attn = MSDeformAttn(embed_dims=16, num_levels=3, num_heads=8, num_points=4)
    assert bool((attn.sampling_offsets.weight == 0).all())
    bias = attn.sampling_offsets.bias.detach().view(8, 3, 4, 2)
    directions = torch.tensor([[1, 0], [1, 1], [0, 1], [-1, 1], [-1, 0], [-1, -1], [0, -1],
                               [1, -1]], dtype=torch.float32)
    steps = torch.arange(1, 5, dtype=torch.float32)
    expected = directions[:, None, None, :] * steps[None, None, :, None]
    torch.testing.assert_close(bias, expected.expand(8, 3, 4, 2), rtol=0, atol=1e-5)
    # attention weights start uniform over levels x points
    assert bool((attn.attention_weights.weight == 0).all())
    assert bool((attn.attention_weights.bias == 0).all())
    assert bool((attn.value_proj.bias == 0).all()) and bool((attn.output_proj.bias == 0).all())


def test_msdeformattn_bad_heads():
    with pytest.raises(ValueError):
        MSDeformAttn(embed_dims=10, num_heads=4)


def _module_inputs(seed: int, c: int = 8, b: int = 2, q: int = 7, shapes=SHAPES):
    gen = torch.Generator().manual_seed(seed)
    spatial_shapes = torch.as_tensor(shapes, dtype=torch.long)
    sizes = [h * w for h, w in shapes]
    level_start_index = torch.as_tensor([0] + sizes[:-1]).cumsum(0)
    value = torch.randn(b, sum(sizes), c, generator=gen)
    query = torch.randn(b, q, c, generator=gen)
    ref = torch.rand(b, q, len(shapes), 2, generator=gen)
    return query, ref, value, spatial_shapes, level_start_index


def test_msdeformattn_forward_matches_manual():
    torch.manual_seed(0)
    attn = MSDeformAttn(embed_dims=8, num_levels=3, num_heads=2, num_points=3)
    # random offsets so that the (W, H) normalisation matters
    torch.nn.init.normal_(attn.sampling_offsets.weight, std=0.5)
    torch.nn.init.normal_(attn.attention_weights.weight, std=0.5)
    query, ref, value, shapes, start = _module_inputs(1)
    out = attn(query, ref, value, shapes, start)
    assert out.shape == query.shape

    b, q, _ = query.shape
    v = attn.value_proj(value).view(b, -1, 2, 4)
    offsets = attn.sampling_offsets(query).view(b, q, 2, 3, 3, 2)
    weights = attn.attention_weights(query).view(b, q, 2, 9).softmax(-1).view(b, q, 2, 3, 3)
    wh = torch.tensor([[w, h] for h, w in SHAPES], dtype=torch.float32)  # x by W, y by H
    loc = ref[:, :, None, :, None, :] + offsets / wh[None, None, None, :, None, :]
    expected = attn.output_proj(multi_scale_deformable_attn_pytorch(v, shapes, loc, weights))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_msdeformattn_padding_mask_zeroes_values():
    torch.manual_seed(0)
    attn = MSDeformAttn(embed_dims=8, num_levels=3, num_heads=2, num_points=2)
    query, ref, value, shapes, start = _module_inputs(2)
    mask = torch.zeros(value.shape[:2], dtype=torch.bool)
    mask[1] = True  # the whole second image is padding
    out = attn(query, ref, value, shapes, start, padding_mask=mask)
    # values all zero -> output = output_proj(0) = bias = 0
    torch.testing.assert_close(out[1], torch.zeros_like(out[1]))
    torch.testing.assert_close(out[0], attn(query, ref, value, shapes, start)[0])


def test_msdeformattn_backward():
    torch.manual_seed(0)
    attn = MSDeformAttn(embed_dims=8, num_levels=3, num_heads=2, num_points=2)
    query, ref, value, shapes, start = _module_inputs(3)
    query.requires_grad_(True)
    attn(query, ref, value, shapes, start).sum().backward()
    assert query.grad is not None and bool(torch.isfinite(query.grad).all())
    for name, param in attn.named_parameters():
        assert param.grad is not None, name


def test_flatten_levels():
    feats = [torch.randn(2, 4, 3, 5), torch.randn(2, 4, 2, 2)]
    flat = flatten_levels(feats)
    assert [f.shape for f in flat] == [(2, 15, 4), (2, 4, 4)]
    torch.testing.assert_close(flat[0][1, 7], feats[0][1, :, 1, 2])
