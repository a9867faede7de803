"""Criterion under bf16 autocast: fp32 finite losses, with empty targets and non-finite logits."""
import pytest
import torch
from mmengine.structures import InstanceData

from mmseg_maskformer.models.losses.criterion import MaskFormerCriterion

K, Q, LAYERS, H, W = 4, 5, 2, 16, 16


def targets(num_segments):
    """One InstanceData per image with ``num_segments[b]`` random masks (64 x 64)."""
    gen = torch.Generator().manual_seed(1)
    return [InstanceData(labels=torch.randint(0, K, (n, ), generator=gen),
                         masks=torch.rand(n, 64, 64, generator=gen) > 0.5)
            for n in num_segments]


def predictions(batch: int, dtype=torch.float32):
    gen = torch.Generator().manual_seed(0)
    cls = [torch.randn(batch, Q, K + 1, generator=gen).to(dtype).requires_grad_()
           for _ in range(LAYERS)]
    masks = [torch.randn(batch, Q, H, W, generator=gen).to(dtype).requires_grad_()
             for _ in range(LAYERS)]
    return cls, masks


@pytest.mark.parametrize('num_segments', [(3, 0), (0, 0), (2, 1)])
def test_bf16_autocast_losses_are_fp32_and_finite(num_segments):
    crit = MaskFormerCriterion(num_classes=K, num_points=32,
                               matcher=dict(type='HungarianPointMatcher', num_points=32))
    cls, masks = predictions(len(num_segments), torch.bfloat16)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = crit(cls, masks, targets(num_segments))
    assert len(losses) == 3 * LAYERS
    for name, value in losses.items():
        assert value.dtype == torch.float32, name
        assert bool(torch.isfinite(value)), name
    sum(losses.values()).backward()
    for tensor in cls + masks:
        assert tensor.grad is not None and bool(torch.isfinite(tensor.grad).all())
    if sum(num_segments) == 0:
        assert all(losses[k].item() == 0.0 for k in losses if 'cls' not in k)


def test_nan_logits_do_not_break_matching():
    """Non-finite logits reach the loss (which is then NaN, as it should be reported) but
    the matching, which runs first, still gives a valid assignment."""
    crit = MaskFormerCriterion(num_classes=K, num_points=32,
                               matcher=dict(type='HungarianPointMatcher', num_points=32))
    cls, masks = predictions(2)
    with torch.no_grad():
        masks[-1][0, 1] = float('nan')
        cls[-1][1, 2] = float('inf')
    losses = crit(cls, masks, targets((3, 2)))
    assert crit.matcher.num_nonfinite_images == 2
    assert set(losses) >= {'loss_cls', 'loss_mask', 'loss_dice'}
