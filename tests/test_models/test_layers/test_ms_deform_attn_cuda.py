"""MSDeformAttn: mmcv's CUDA kernel path equals the pure-PyTorch path.

Runs only where a CUDA device is present (the kernel does not exist on CPU);
the CPU suite checks the PyTorch op against mmcv's reference implementation
in ``test_ms_deform_attn.py``.
"""
import pytest
import torch

from mmseg_maskformer.models.layers.ms_deform_attn import MSDeformAttn, ms_deform_attn_core

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')


def _inputs(device, dtype=torch.float32):
    torch.manual_seed(0)
    shapes = torch.tensor([[16, 12], [8, 6], [4, 3]], device=device)
    sizes = (shapes[:, 0] * shapes[:, 1])
    start = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]])
    b, q, c = 2, 30, 64
    query = torch.randn(b, q, c, device=device, dtype=dtype)
    value = torch.randn(b, int(sizes.sum()), c, device=device, dtype=dtype)
    ref = torch.rand(b, q, 3, 2, device=device, dtype=dtype)
    return query, ref, value, shapes, start


@cuda
@pytest.mark.parametrize('dtype,atol', [(torch.float32, 1e-5), (torch.float16, 2e-2)])
def test_cuda_kernel_matches_pytorch(dtype, atol):
    attn = MSDeformAttn(64, 3, 4, 4).cuda().to(dtype)
    assert attn.use_cuda_kernel
    torch.nn.init.normal_(attn.sampling_offsets.weight, std=0.1)
    torch.nn.init.normal_(attn.attention_weights.weight, std=0.1)
    query, ref, value, shapes, start = _inputs('cuda', dtype)
    out_kernel = attn(query, ref, value, shapes, start)
    attn.use_cuda_kernel = False
    out_torch = attn(query, ref, value, shapes, start)
    torch.testing.assert_close(out_kernel.float(), out_torch.float(), atol=atol, rtol=atol)


@cuda
def test_cuda_kernel_gradients_match_pytorch():
    from mmcv.ops.multi_scale_deform_attn import MultiScaleDeformableAttnFunction
    torch.manual_seed(0)
    shapes = torch.tensor([[6, 5], [3, 4]], device='cuda')
    start = torch.tensor([0, 30], device='cuda')
    value = torch.randn(1, 42, 2, 8, device='cuda', dtype=torch.float64, requires_grad=True)
    loc = torch.rand(1, 7, 2, 2, 3, 2, device='cuda', dtype=torch.float64, requires_grad=True)
    w = torch.rand(1, 7, 2, 2, 3, device='cuda', dtype=torch.float64).softmax(-1)
    w.requires_grad_(True)
    a = MultiScaleDeformableAttnFunction.apply(value, shapes, start, loc, w, 64)
    b = ms_deform_attn_core(value, shapes, loc, w)
    torch.testing.assert_close(a, b)
    ga = torch.autograd.grad(a.sum(), (value, loc, w))
    gb = torch.autograd.grad(b.sum(), (value, loc, w))
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y, atol=1e-6, rtol=1e-5)
