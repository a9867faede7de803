"""ResNetFoldedBN against mmseg's ResNet: outputs and gradients, every BatchNorm mode."""
import pytest
import torch
from mmseg.models.backbones import ResNet
from torch import nn

from mmseg_maskformer.models.backbones.resnet import (ResNetFoldedBN, conv_norm, folds,
                                                      sequential_conv_norm)
from mmseg_maskformer.registry import MODELS


def _randomise_norms(model: nn.Module) -> None:
    """Random BatchNorm statistics and affine parameters, so that folding matters."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)
                if module.affine:
                    module.weight.uniform_(0.5, 1.5)
                    module.bias.uniform_(-0.5, 0.5)


def _pair(**kwargs):
    """mmseg's ResNet with random weights and ours holding them, float64."""
    kwargs = dict(base_channels=8, stem_channels=8, out_indices=(0, 1, 2, 3), **kwargs)
    torch.manual_seed(0)
    theirs = ResNet(**kwargs)
    _randomise_norms(theirs)
    ours = ResNetFoldedBN(**kwargs)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours.double(), theirs.double()


FROZEN = dict(norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True)


@pytest.mark.parametrize('kwargs', [
    dict(depth=50, **FROZEN),  # the recipes' frozen backbone
    dict(depth=18, **FROZEN),
    dict(depth=50, deep_stem=True, avg_down=True, **FROZEN),  # V1d stem and shortcut
    dict(depth=50, with_cp=True, **FROZEN),  # activation checkpointing
    # the R-101c configs' ResNetV1c: deep stem, dilated last stages with a multi-grid
    dict(depth=50, deep_stem=True, avg_down=False, strides=(1, 2, 1, 1),
         dilations=(1, 1, 2, 4), multi_grid=(1, 2, 4), contract_dilation=True, **FROZEN),
    dict(depth=18, norm_eval=True),  # eval-mode norms whose affine parameters train
    dict(depth=18),  # training-mode norms: batch statistics, not folded
])
def test_outputs_and_gradients_equal_mmseg_in_float64(kwargs):
    ours, theirs = _pair(**kwargs)
    ours.train(), theirs.train()
    x = torch.randn(2, 3, 64, 96, dtype=torch.float64)
    got, want = ours(x), theirs(x)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-10)
    grads = [torch.randn_like(w) for w in want]
    # backward() rather than autograd.grad(): mmseg's checkpointing (with_cp) is reentrant
    sum((o * g).sum() for o, g in zip(got, grads)).backward()
    sum((o * g).sum() for o, g in zip(want, grads)).backward()
    names = [n for n, p in ours.named_parameters() if p.requires_grad]
    assert names == [n for n, p in theirs.named_parameters() if p.requires_grad]
    params = dict(theirs.named_parameters())
    for name in names:
        torch.testing.assert_close(dict(ours.named_parameters())[name].grad,
                                   params[name].grad, rtol=1e-9, atol=1e-9, msg=name)
    # buffers: batch statistics update exactly as mmseg's (nothing when frozen)
    for (name, a), (_, b) in zip(ours.named_buffers(), theirs.named_buffers()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12, msg=name)


def test_eval_mode_outputs_equal_mmseg_and_stay_channels_last():
    ours, theirs = _pair(depth=50)
    ours.eval(), theirs.eval()
    ours.to(memory_format=torch.channels_last)
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64).contiguous(
        memory_format=torch.channels_last)
    with torch.no_grad():
        got, want = ours(x), theirs(x)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-10)
        assert g.is_contiguous(memory_format=torch.channels_last)


def test_conv_norm_folds_only_eval_mode_batchnorm():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1, bias=True).double()
    norm = nn.BatchNorm2d(4).double()
    _randomise_norms(norm)
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    assert not folds(conv, norm)  # training mode: batch statistics
    torch.testing.assert_close(conv_norm(conv, norm, x), norm(conv(x)), rtol=0, atol=0)
    norm.eval()
    assert folds(conv, norm)
    torch.testing.assert_close(conv_norm(conv, norm, x), norm(conv(x)), rtol=0, atol=1e-12)
    assert not folds(conv, nn.GroupNorm(2, 4)) and not folds(nn.Identity(), norm)
    affine_free = nn.BatchNorm2d(4, affine=False).double().eval()
    _randomise_norms(affine_free)
    torch.testing.assert_close(conv_norm(conv, affine_free, x), affine_free(conv(x)),
                               rtol=0, atol=1e-12)


def test_sequential_conv_norm_folds_pairs_and_runs_the_rest():
    torch.manual_seed(0)
    layers = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(3, 4, 1, bias=False), nn.BatchNorm2d(4),
                           nn.ReLU(), nn.Conv2d(4, 4, 1)).double().eval()
    _randomise_norms(layers)
    x = torch.randn(1, 3, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(sequential_conv_norm(layers, x), layers(x), rtol=0, atol=1e-12)


def test_registered_with_mmseg_keys():
    model = MODELS.build(dict(type='ResNetFoldedBN', depth=18, base_channels=8,
                              stem_channels=8))
    assert type(model) is ResNetFoldedBN
    reference = ResNet(depth=18, base_channels=8, stem_channels=8)
    assert list(model.state_dict()) == list(reference.state_dict())
