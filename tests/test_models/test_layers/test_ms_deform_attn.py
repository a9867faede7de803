"""Tests of the pure-PyTorch multi-scale deformable attention and MSDeformAttn."""
import os

import pytest
import torch
from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch

from bilinear_reference import bilinear_zero_pad
from mmseg_maskformer.models.layers import cpu_kernel
from mmseg_maskformer.models.layers import ms_deform_attn as msda_module
from mmseg_maskformer.models.layers.cpu_kernel import (kernel_available, kernel_failure,
                                                       ms_deform_attn_cpu,
                                                       ms_deform_attn_cpu_from_projections)
from mmseg_maskformer.models.layers.ms_deform_attn import (MSDeformAttn, flatten_levels,
                                                           ms_deform_attn_core,
                                                           ms_deform_attn_gather,
                                                           normalise_offsets,
                                                           softmax_short_last)

SHAPES = [(6, 5), (3, 4), (2, 2)]  # three levels of different, non-square sizes


def require_cpu_kernel():
    """The compiled kernel must build, unless switched off on purpose."""
    if os.environ.get('MMSEG_MASKFORMER_CPU_KERNEL', '1') == '0':
        pytest.skip('compiled CPU kernel switched off (MMSEG_MASKFORMER_CPU_KERNEL=0)')
    assert kernel_available(), kernel_failure()


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


def _input_grads(fn):
    """Gradients of value, locations and weights (seed-1 float64 inputs, a fixed grad_out)."""
    value, shapes, locations, weights = _inputs(1, dtype=torch.float64)
    grad_out = torch.randn(2, 5, 6, generator=torch.Generator().manual_seed(9),
                           dtype=torch.float64)
    v, loc, w = (t.clone().requires_grad_(True) for t in (value, locations, weights))
    (fn(v, shapes, loc, w) * grad_out).sum().backward()
    return v.grad, loc.grad, w.grad


def test_core_gradients_match_mmcv_pytorch():
    ours = _input_grads(ms_deform_attn_core)
    ref = _input_grads(multi_scale_deformable_attn_pytorch)
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


def _cores():
    """The optimised cores, each checked against the grid_sample reference."""
    require_cpu_kernel()
    return [ms_deform_attn_gather, ms_deform_attn_cpu]


@pytest.mark.parametrize('core', ['gather', 'cpu'])
@pytest.mark.parametrize('dtype,atol', [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize('seed', [0, 5, 6])
def test_fast_cores_match_grid_sample_core(core, dtype, atol, seed):
    fn = _cores()[core == 'cpu']
    # locations run from -0.3 to 1.3: corners inside, on the border and outside
    value, shapes, locations, weights = _inputs(seed, dtype=dtype, b=2, q=9, m=3, d=4)
    out = fn(value, shapes, locations, weights)
    ref = ms_deform_attn_core(value, shapes, locations, weights)
    assert out.shape == ref.shape == (2, 9, 12) and out.dtype == dtype
    torch.testing.assert_close(out, ref, rtol=0, atol=atol)


@pytest.mark.parametrize('core', ['gather', 'cpu'])
def test_fast_cores_edges_and_far_outside(core):
    fn = _cores()[core == 'cpu']
    value, shapes, locations, weights = _inputs(7, dtype=torch.float64)
    # exactly on pixel centres, on the image edge, half a pixel and far outside
    edge = torch.tensor([0.0, 1.0, -0.1, 1.1, 5.0, -7.0, 0.5], dtype=torch.float64)
    locations = edge[torch.randint(0, 7, locations.shape,
                                   generator=torch.Generator().manual_seed(0))]
    out = fn(value, shapes, locations, weights)
    ref = ms_deform_attn_core(value, shapes, locations, weights)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    far = torch.full_like(locations, -3.0)
    torch.testing.assert_close(fn(value, shapes, far, weights),
                               torch.zeros(2, 5, 6, dtype=torch.float64))


@pytest.mark.parametrize('core', ['gather', 'cpu'])
def test_fast_cores_nan_location_reads_nothing_out_of_bounds(core):
    fn = _cores()[core == 'cpu']
    value, shapes, locations, weights = _inputs(8)
    locations[0, 0, 0, 0, 0] = float('nan')
    out = fn(value, shapes, locations, weights)  # no IndexError, no stray read
    assert out.shape == (2, 5, 6) and bool(torch.isfinite(out[1]).all())


@pytest.mark.parametrize('core', ['gather', 'cpu'])
def test_fast_cores_gradients_match_reference(core):
    fn = _cores()[core == 'cpu']
    for g_fast, g_ref in zip(_input_grads(fn), _input_grads(ms_deform_attn_core)):
        assert bool(g_ref.abs().sum() > 0)
        torch.testing.assert_close(g_fast, g_ref, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize('dtype,atol', [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_cpu_kernel_head_width_32_matches_reference(dtype, atol):
    """The kernel's fixed-length loops for 32-wide heads (the model's), with corners
    inside, on the border and outside, forward and backward."""
    require_cpu_kernel()
    value, shapes, locations, weights = _inputs(11, dtype=dtype, b=2, q=6, m=2, d=32)
    grad_out = torch.randn(2, 6, 64, generator=torch.Generator().manual_seed(3), dtype=dtype)
    results = []
    for fn in (ms_deform_attn_cpu, ms_deform_attn_core):
        v, loc, w = (t.clone().requires_grad_(True) for t in (value, locations, weights))
        out = fn(v, shapes, loc, w)
        (out * grad_out).sum().backward()
        results.append((out, v.grad, loc.grad, w.grad))
    for got, want in zip(*results):
        assert bool(want.abs().sum() > 0)
        torch.testing.assert_close(got, want, rtol=1e-5 if dtype == torch.float32 else 1e-9,
                                   atol=atol)


def test_cpu_kernel_gradcheck():
    require_cpu_kernel()
    value, shapes, locations, weights = _inputs(2, dtype=torch.float64, b=2, q=3, m=2, d=3,
                                                p=2, shapes=[(3, 2), (2, 2)])
    inputs = tuple(t.requires_grad_(True) for t in (value, locations, weights))
    assert torch.autograd.gradcheck(lambda v, loc, w: ms_deform_attn_cpu(v, shapes, loc, w),
                                    inputs, eps=1e-6, atol=1e-5)


@pytest.fixture(params=['openmp', 'python threads'])
def kernel_threading(request, monkeypatch, tmp_path):
    """The kernel split by OpenMP, or a build without OpenMP split by Python threads."""
    require_cpu_kernel()
    if request.param == 'openmp':
        if not cpu_kernel._openmp:
            pytest.fail('the kernel was built without OpenMP: ' + cpu_kernel.kernel_failure())
        return
    monkeypatch.setenv('MMSEG_MASKFORMER_CACHE', str(tmp_path))
    library = cpu_kernel._open(cpu_kernel._build(os.environ.get('CC', 'cc')))
    assert library.msda_openmp() == 0
    monkeypatch.setattr(cpu_kernel, '_library', library)
    monkeypatch.setattr(cpu_kernel, '_openmp', False)


def test_cpu_kernel_splits_work_between_threads(kernel_threading):
    """The same outputs and gradients with 1 and 3 threads (uneven ranges)."""
    value, shapes, locations, weights = _inputs(9, dtype=torch.float64, b=3, q=7)
    b, q, m, lv, p, _ = locations.shape
    ref = torch.rand(b, q, lv, 2, dtype=torch.float64)
    projections = torch.randn(b, q, m * lv * p * 3, dtype=torch.float64)
    grad = torch.randn(b, q, value.shape[2] * value.shape[3], dtype=torch.float64)

    def run():
        inputs = [t.clone().requires_grad_(True) for t in (value, locations, weights)]
        out = ms_deform_attn_cpu(inputs[0], shapes, inputs[1], inputs[2])
        out.backward(grad)
        with torch.no_grad():
            from_proj = ms_deform_attn_cpu_from_projections(value, shapes, ref, projections,
                                                            m, p)
        return [out.detach(), from_proj] + [t.grad for t in inputs]

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = run()
        torch.set_num_threads(3)
        three = run()
    finally:
        torch.set_num_threads(threads)
    for a, b_ in zip(one, three):
        assert bool(a.abs().sum() > 0)
        assert torch.equal(a, b_)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_gather_low_precision_samples_in_fp32(dtype):
    value, shapes, locations, weights = _inputs(3)
    out = ms_deform_attn_gather(value.to(dtype), shapes, locations.to(dtype), weights.to(dtype))
    ref = ms_deform_attn_core(value.to(dtype), shapes, locations.to(dtype), weights.to(dtype))
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), ref.float(), rtol=0, atol=1e-2)


def _record_cores(monkeypatch):
    calls = []
    for name in ('ms_deform_attn_core', 'ms_deform_attn_gather', 'ms_deform_attn_cpu',
                 'ms_deform_attn_cpu_from_projections'):
        original = getattr(msda_module, name)
        monkeypatch.setattr(msda_module, name,
                            lambda *a, _n=name, _f=original: calls.append(_n) or _f(*a))
    return calls


@pytest.mark.parametrize('use_cpu_kernel,expected', [
    (False, ['ms_deform_attn_core', 'ms_deform_attn_gather']),
    (True, ['ms_deform_attn_cpu', 'ms_deform_attn_cpu_from_projections']),
])
def test_module_dispatch(use_cpu_kernel, expected, monkeypatch):
    """Kernel off: the gather without gradients, the reference with; on: the kernel, from
    the projections without gradients."""
    require_cpu_kernel()
    calls = _record_cores(monkeypatch)
    torch.manual_seed(0)
    attn = MSDeformAttn(embed_dims=8, num_levels=3, num_heads=2, num_points=3,
                        use_cpu_kernel=use_cpu_kernel)
    torch.nn.init.normal_(attn.sampling_offsets.weight, std=0.5)
    inputs = _module_inputs(4)
    train_out = attn(*inputs)
    with torch.no_grad():
        eval_out = attn(*inputs)
    assert calls == expected
    torch.testing.assert_close(eval_out, train_out.detach(), rtol=0, atol=1e-6)


def _output_and_gradients(module, owner, query, *inputs):
    """``module(query, *inputs)`` and the gradients of ``sum(out²)`` with respect to the
    query and ``owner``'s parameters (which are left without gradients)."""
    q = query.clone().requires_grad_(True)
    out = module(q, *inputs)
    out.pow(2).sum().backward()
    grads = [q.grad] + [p.grad for p in owner.parameters()]
    owner.zero_grad(set_to_none=True)
    return out.detach(), grads

def test_module_outputs_and_gradients_equal_with_and_without_kernel():
    require_cpu_kernel()
    torch.manual_seed(0)
    fast = MSDeformAttn(embed_dims=8, num_levels=3, num_heads=2, num_points=3).double()
    torch.nn.init.normal_(fast.sampling_offsets.weight, std=0.5)
    torch.nn.init.normal_(fast.attention_weights.weight, std=0.5)
    slow = MSDeformAttn(embed_dims=8, num_levels=3, num_heads=2, num_points=3,
                        use_cpu_kernel=False).double()
    slow.load_state_dict(fast.state_dict())
    query, ref, value, shapes, start = (t.double() if t.is_floating_point() else t
                                        for t in _module_inputs(5))
    outs, grads = zip(*(_output_and_gradients(attn, attn, query, ref, value, shapes, start)
                        for attn in (fast, slow)))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=1e-12)
    for g_fast, g_slow in zip(*grads):
        torch.testing.assert_close(g_fast, g_slow, rtol=1e-9, atol=1e-12)


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


@pytest.mark.parametrize('shape', [(2, 7, 3, 12), (5, 1), (1, 4, 9)])
def test_softmax_short_last_matches_softmax(shape):
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(shape, generator=gen, dtype=torch.float64) * 5).requires_grad_()
    grad = torch.randn(shape, generator=gen, dtype=torch.float64)
    out = softmax_short_last(x)
    assert out.shape == x.shape and out.is_contiguous()
    (out * grad).sum().backward()
    got_grad, x.grad = x.grad, None
    expected = x.softmax(-1)
    (expected * grad).sum().backward()
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-15)
    torch.testing.assert_close(got_grad, x.grad, rtol=0, atol=1e-14)


def test_softmax_short_last_non_contiguous_input():
    x = torch.randn(6, 4, 10).transpose(0, 1)  # (4, 6, 10), not contiguous
    torch.testing.assert_close(softmax_short_last(x), x.softmax(-1))


def test_normalise_offsets_equals_broadcast_division():
    gen = torch.Generator().manual_seed(0)
    b, q, m, p = 2, 5, 3, 4
    shapes = torch.as_tensor(SHAPES)
    lv = len(SHAPES)
    offsets = torch.randn(b, q, m * lv * p * 2, generator=gen) * 10
    wh = shapes.flip(-1).float()  # x by W, y by H
    expected = offsets.view(b, q, m, lv, p, 2) / wh[None, None, None, :, None, :]
    got = normalise_offsets(offsets, shapes, m, p)
    assert got.shape == offsets.shape
    assert torch.equal(got.view(b, q, m, lv, p, 2), expected)  # the same quotients, bit for bit


def _projection_inputs(dtype, b=2, q=7, m=2, p=3, shapes=SHAPES, seed=0):
    """Value, reference points and raw projections (offsets in pixels, then logits)."""
    gen = torch.Generator().manual_seed(seed)
    num_levels = len(shapes)
    s = sum(h * w for h, w in shapes)
    value = torch.randn(b, s, m, 4, generator=gen, dtype=dtype)
    ref = torch.rand(b, q, num_levels, 2, generator=gen, dtype=dtype)
    offsets = torch.randn(b, q, m * num_levels * p * 2, generator=gen, dtype=dtype) * 3
    logits = torch.randn(b, q, m * num_levels * p, generator=gen, dtype=dtype) * 2
    return value, torch.as_tensor(shapes), ref, offsets, logits


@pytest.mark.parametrize('dtype,atol', [(torch.float32, 1e-6), (torch.float64, 1e-12)])
def test_kernel_from_projections_equals_the_unfused_path(dtype, atol):
    """Offsets normalised and added, softmax per head, then the kernel; in one call."""
    require_cpu_kernel()
    m, p = 2, 3
    value, shapes, ref, offsets, logits = _projection_inputs(dtype, m=m, p=p)
    b, q, num_levels = ref.shape[0], ref.shape[1], len(SHAPES)
    locations = ref[:, :, None, :, None, :] + normalise_offsets(offsets, shapes, m, p).view(
        b, q, m, num_levels, p, 2)
    assert bool((locations < 0).any()) and bool((locations > 1).any())  # edges and outside
    weights = logits.view(b, q, m, num_levels * p).softmax(-1).view(b, q, m, num_levels, p)
    want = ms_deform_attn_cpu(value, shapes, locations, weights)
    got = ms_deform_attn_cpu_from_projections(value, shapes, ref,
                                              torch.cat([offsets, logits], -1), m, p)
    assert got.shape == want.shape == (b, q, m * 4)
    torch.testing.assert_close(got, want, rtol=0, atol=atol)


def test_kernel_from_projections_refuses_gradients_and_bad_inputs():
    require_cpu_kernel()
    value, shapes, ref, offsets, logits = _projection_inputs(torch.float32)
    proj = torch.cat([offsets, logits], -1)
    with pytest.raises(RuntimeError, match='no backward'):
        ms_deform_attn_cpu_from_projections(value, shapes, ref, proj.requires_grad_(), 2, 3)
    proj = proj.detach()
    with pytest.raises(ValueError, match='dtype'):
        ms_deform_attn_cpu_from_projections(value, shapes, ref.double(), proj, 2, 3)
    with pytest.raises(ValueError, match='inconsistent shapes'):
        ms_deform_attn_cpu_from_projections(value, shapes, ref, proj[..., 1:], 2, 3)
    with pytest.raises(ValueError, match='inconsistent shapes'):
        ms_deform_attn_cpu_from_projections(value, shapes, ref, proj, 2, 4)


def test_module_without_gradients_uses_one_projection_and_matches(monkeypatch):
    """The inference path gives the module's training-path output in float64."""
    require_cpu_kernel()
    calls = _record_cores(monkeypatch)
    torch.manual_seed(0)
    attn = MSDeformAttn(embed_dims=8, num_levels=3, num_heads=2, num_points=3).double()
    torch.nn.init.normal_(attn.sampling_offsets.weight, std=0.5)
    torch.nn.init.normal_(attn.attention_weights.weight, std=0.5)
    inputs = [t.double() if t.is_floating_point() else t for t in _module_inputs(4)]
    with torch.no_grad():
        fast = attn(*inputs)
    slow = attn(*inputs)
    assert calls == ['ms_deform_attn_cpu_from_projections', 'ms_deform_attn_cpu']
    torch.testing.assert_close(fast, slow.detach(), rtol=0, atol=1e-12)


def test_kernel_operators_pass_torch_library_opcheck():
    """Schema, fake (shape-only) implementations and autograd of the kernel operators."""
    require_cpu_kernel()
    value, shapes, locations, weights = _inputs(11, torch.float64)
    grad_out = torch.randn(value.shape[0], locations.shape[1], value.shape[2] * value.shape[3],
                           dtype=torch.float64)
    with_grad = [t.clone().requires_grad_(True) for t in (value, locations, weights)]
    torch.library.opcheck(cpu_kernel._forward_op,
                          (with_grad[0], shapes, with_grad[1], with_grad[2]))
    torch.library.opcheck(cpu_kernel._backward_op, (value, shapes, locations, weights, grad_out))
    b, q, m, num_levels, p, _ = locations.shape
    reference = torch.rand(b, q, num_levels, 2, dtype=torch.float64)
    projections = torch.randn(b, q, m * num_levels * p * 3, dtype=torch.float64)
    torch.library.opcheck(cpu_kernel._from_projections_op,
                          (value, shapes, reference, projections, p))


def test_module_with_the_kernel_compiles_as_one_graph():
    """``torch.compile`` traces the kernels as operators (it once ran them on fake tensors'
    memory and crashed): training and inference outputs and gradients equal eager ones."""
    require_cpu_kernel()
    torch.manual_seed(0)
    attn = MSDeformAttn(embed_dims=8, num_levels=3, num_heads=2, num_points=3)
    torch.nn.init.normal_(attn.sampling_offsets.weight, std=0.5)
    torch.nn.init.normal_(attn.attention_weights.weight, std=0.5)
    query, ref, value, shapes, start = _module_inputs(6)
    compiled = torch.compile(attn, fullgraph=True)  # a graph break is an error
    try:
        outs, grads = zip(*(_output_and_gradients(module, attn, query, ref, value, shapes, start)
                            for module in (compiled, attn)))
        torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=1e-6)
        for g_compiled, g_eager in zip(*grads):
            torch.testing.assert_close(g_compiled, g_eager, rtol=1e-5, atol=1e-6)
        with torch.no_grad():  # the inference kernel, from the projections
            torch.testing.assert_close(compiled(query, ref, value, shapes, start),
                                       attn(query, ref, value, shapes, start),
                                       rtol=0, atol=1e-6)
    finally:
        torch._dynamo.reset()
