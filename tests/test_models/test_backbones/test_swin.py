"""SwinTransformerSDPA against mmseg's SwinTransformer and brute-force window orders."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmcv.cnn.bricks.transformer import FFN
from mmseg.models.backbones.swin import ShiftWindowMSA, SwinTransformer, WindowMSA
from mmseg.models.utils.embed import PatchMerging
from torch.utils._python_dispatch import TorchDispatchMode

from mmseg_maskformer.models.backbones.swin import (SHIFT_MASK_VALUE, GatherPatchMerging,
                                                    GELUFFN, SDPAShiftWindowMSA,
                                                    SwinTransformerSDPA, shifted_window_mask,
                                                    window_token_indices)
from mmseg_maskformer.registry import MODELS

TINY = dict(embed_dims=12, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4), window_size=5,
            drop_path_rate=0.0, out_indices=(0, 1, 2, 3))


def _windows_brute_force(tokens: torch.Tensor, height: int, width: int, window: int,
                         shift: int) -> torch.Tensor:
    """mmseg's order: pad, roll by -shift, partition; tokens (H * W,) -> (Hp * Wp,)."""
    grid = tokens.view(1, height, width, 1).float()
    grid = F.pad(grid, (0, 0, 0, (-width) % window, 0, (-height) % window), value=-1)
    grid = torch.roll(grid, shifts=(-shift, -shift), dims=(1, 2))
    _, hp, wp, _ = grid.shape
    parts = grid.view(hp // window, window, wp // window, window).permute(0, 2, 1, 3)
    return parts.reshape(-1).long()


@pytest.mark.parametrize('height,width,window,shift', [
    (10, 15, 5, 0), (10, 15, 5, 2), (7, 9, 5, 2), (12, 13, 7, 3), (4, 4, 7, 3), (6, 6, 3, 1)])
def test_window_token_indices_match_pad_roll_partition(height, width, window, shift):
    gather, scatter = window_token_indices(height, width, window, shift)
    expected = _windows_brute_force(torch.arange(height * width), height, width, window, shift)
    padding = expected < 0
    assert torch.equal(gather[~padding], expected[~padding])
    assert torch.all(gather[padding] == height * width)
    # scatter inverts gather on the real tokens
    assert torch.equal(gather[scatter], torch.arange(height * width))


def _mmseg_shift_mask(height: int, width: int, window: int, shift: int) -> torch.Tensor:
    """The mask mmseg's ShiftWindowMSA.forward builds (its slice loop, verbatim logic)."""
    img_mask = torch.zeros((1, height, width, 1))
    slices = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    count = 0
    for h in slices:
        for w in slices:
            img_mask[:, h, w, :] = count
            count += 1
    module = ShiftWindowMSA(embed_dims=4, num_heads=1, window_size=window, shift_size=shift)
    windows = module.window_partition(img_mask).view(-1, window * window)
    diff = windows.unsqueeze(1) - windows.unsqueeze(2)
    return diff.masked_fill(diff != 0, SHIFT_MASK_VALUE).masked_fill(diff == 0, 0.0)


@pytest.mark.parametrize('height,width,window,shift', [(14, 21, 7, 3), (10, 10, 5, 2),
                                                       (7, 7, 7, 3)])
def test_shifted_window_mask_equals_mmseg(height, width, window, shift):
    got = shifted_window_mask(height, width, window, shift)
    want = _mmseg_shift_mask(height, width, window, shift)
    assert got.shape == want.shape == ((height // window) * (width // window), window**2,
                                       window**2)
    assert torch.equal(got, want)
    assert (got == SHIFT_MASK_VALUE).any() and (got == 0).any()


def _pair(**kwargs):
    """mmseg's SwinTransformer with random weights and ours holding them, float64."""
    torch.manual_seed(0)
    theirs = SwinTransformer(**{**TINY, **kwargs})
    theirs.init_weights()  # random relative position tables (zeros before)
    ours = SwinTransformerSDPA(**{**TINY, **kwargs})
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours.double(), theirs.double()


def test_same_state_dict_keys_as_mmseg():
    ours, theirs = _pair()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    kinds = {type(m).__name__ for m in ours.modules()}
    assert {'SDPAShiftWindowMSA', 'SDPAWindowMSA', 'GatherPatchMerging', 'GELUFFN'} <= kinds
    assert not {'ShiftWindowMSA', 'WindowMSA', 'PatchMerging', 'FFN'} & kinds


@pytest.mark.parametrize('size', [(64, 64), (72, 92)])  # windows fit / every stage padded
def test_outputs_and_gradients_equal_mmseg_in_float64(size):
    ours, theirs = _pair()
    ours.train(), theirs.train()
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    got, want = ours(x), theirs(x)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-10)
        assert g.is_contiguous(memory_format=torch.channels_last)
    grads = [torch.randn_like(w) for w in want]
    params = dict(theirs.named_parameters())
    g_ours = torch.autograd.grad(got, list(ours.parameters()), grads)
    g_theirs = torch.autograd.grad(want, [params[n] for n, _ in ours.named_parameters()], grads)
    for (name, _), g, w in zip(ours.named_parameters(), g_ours, g_theirs):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-9, msg=name)
    table = 'stages.0.blocks.1.attn.w_msa.relative_position_bias_table'
    assert g_ours[[n for n, _ in ours.named_parameters()].index(table)].abs().max() > 1e-6



@pytest.mark.parametrize('size', [(64, 64), (72, 92)])
def test_inference_outputs_equal_mmseg_in_float64(size):
    """Eval mode without autograd: the in-place GELU / residual and bias-after-product path."""
    ours, theirs = _pair()
    ours.eval(), theirs.eval()
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    with torch.no_grad():
        got, want = ours(x), theirs(x)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-10)

def test_window_tensors_are_built_once_per_size():
    ours, _ = _pair()
    ours.eval()
    attn = ours.stages[0].blocks[1].attn
    with torch.no_grad():
        ours(torch.randn(1, 3, 64, 64, dtype=torch.float64))
        first = attn._windows[(16, 16, torch.device('cpu'))]
        ours(torch.randn(1, 3, 64, 64, dtype=torch.float64))
        ours(torch.randn(1, 3, 40, 48, dtype=torch.float64))
    assert attn._windows[(16, 16, torch.device('cpu'))] is first
    assert sorted(attn._windows) == [(10, 12, torch.device('cpu')), (16, 16, torch.device('cpu'))]


def test_bf16_autocast_runs_with_the_float_masks():
    ours, theirs = _pair()
    ours.float().eval(), theirs.float().eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        got, want = ours(x), theirs(x)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        assert torch.isfinite(g).all()
        torch.testing.assert_close(g.float(), w.float(), rtol=0, atol=0.1)


def test_registered_and_built_from_config():
    model = MODELS.build(dict(type='SwinTransformerSDPA', **TINY))
    assert type(model) is SwinTransformerSDPA


def test_adopt_refuses_other_modules():
    with pytest.raises(TypeError, match='ShiftWindowMSA'):
        SDPAShiftWindowMSA.adopt(WindowMSA(4, 1, (3, 3)))
    module = ShiftWindowMSA(embed_dims=4, num_heads=1, window_size=3)
    SDPAShiftWindowMSA.adopt(module)
    with pytest.raises(TypeError):  # already adopted
        SDPAShiftWindowMSA.adopt(module)


def test_wrong_token_count_is_an_error():
    ours, _ = _pair()
    with pytest.raises(ValueError, match='tokens for a'):
        ours.stages[0].blocks[0].attn(torch.randn(1, 10, 12, dtype=torch.float64), (3, 4))


@pytest.mark.parametrize('height,width', [(6, 8), (7, 5), (1, 1)])
def test_patch_merging_equals_mmseg_in_float64(height, width):
    torch.manual_seed(0)
    theirs = PatchMerging(in_channels=6, out_channels=10, stride=2, norm_cfg=dict(type='LN'))
    for param in theirs.parameters():
        torch.nn.init.normal_(param)  # an identity norm would hide a wrong feature order
    theirs.double()
    ours = GatherPatchMerging.adopt(copy.deepcopy(theirs))
    x = torch.randn(2, height * width, 6, dtype=torch.float64, requires_grad=True)
    got, got_size = ours(x, (height, width))
    want, want_size = theirs(x, (height, width))
    assert got_size == want_size == ((height + 1) // 2, (width + 1) // 2)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    grad = torch.randn_like(want)
    inputs = [x, *ours.parameters()]
    g_ours = torch.autograd.grad(got, inputs, grad)
    g_theirs = torch.autograd.grad(want, [x, *theirs.parameters()], grad)
    for g, w in zip(g_ours, g_theirs):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-11)
    with pytest.raises(ValueError, match='tokens for a'):
        ours(x, (height + 1, width))


def test_patch_merging_adopt_refuses_other_merges():
    for module in (PatchMerging(4, 8, kernel_size=3, stride=2, norm_cfg=dict(type='LN')),
                   PatchMerging(4, 8, stride=2, norm_cfg=None),
                   PatchMerging(4, 8, stride=2, padding='same', norm_cfg=dict(type='LN')),
                   WindowMSA(4, 1, (3, 3))):
        with pytest.raises(TypeError, match='PatchMerging of 2 x 2'):
            GatherPatchMerging.adopt(module)
    module = GatherPatchMerging.adopt(PatchMerging(4, 8, stride=2, norm_cfg=dict(type='LN')))
    with pytest.raises(TypeError):  # already adopted
        GatherPatchMerging.adopt(module)


class _AtenOps(TorchDispatchMode):
    """Records the names of the aten ops run inside it."""

    def __init__(self):
        super().__init__()
        self.names = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(str(func))
        return func(*args, **(kwargs or {}))


def _mmcv_ffn(**kwargs):
    torch.manual_seed(0)
    return FFN(embed_dims=6, feedforward_channels=10, act_cfg=dict(type='GELU'), **kwargs)


@pytest.mark.parametrize('add_identity,with_identity', [(True, True), (True, False),
                                                         (False, False)])
def test_gelu_ffn_inference_equals_mmcv(add_identity, with_identity):
    theirs = _mmcv_ffn(add_identity=add_identity).double().eval()
    ours = GELUFFN.adopt(copy.deepcopy(theirs))
    x, identity = torch.randn(2, 7, 6, dtype=torch.float64), torch.randn(2, 7, 6,
                                                                          dtype=torch.float64)
    kwargs = dict(identity=identity) if with_identity else {}
    x_before, identity_before = x.clone(), identity.clone()
    with torch.no_grad(), _AtenOps() as ops:
        got = ours(x, **kwargs)
    assert 'aten.gelu_.default' in ops.names and 'aten.addmm.default' not in ops.names
    torch.testing.assert_close(got, theirs(x, **kwargs), rtol=0, atol=1e-12)
    assert torch.equal(x, x_before) and torch.equal(identity, identity_before)  # inputs kept
    out = ours(x, **kwargs)  # with autograd: mmcv's forward
    assert out.grad_fn is not None
    torch.testing.assert_close(out, theirs(x, **kwargs), rtol=0, atol=0)


def test_gelu_ffn_under_bf16_autocast_keeps_the_residual_type():
    theirs = _mmcv_ffn().eval()
    ours = GELUFFN.adopt(copy.deepcopy(theirs))
    x = torch.randn(3, 6)
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        got, want = ours(x), theirs(x)
    assert got.dtype == want.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=0, atol=0.05)


def test_gelu_ffn_adopt_refuses_other_ffns():
    for module in (FFN(embed_dims=6, feedforward_channels=10),  # ReLU
                   _mmcv_ffn(num_fcs=3),
                   _mmcv_ffn(layer_scale_init_value=0.1),
                   WindowMSA(4, 1, (3, 3))):
        with pytest.raises(TypeError, match='two linear layers with a GELU'):
            GELUFFN.adopt(module)
    module = GELUFFN.adopt(_mmcv_ffn())
    with pytest.raises(TypeError):  # already adopted
        GELUFFN.adopt(module)
