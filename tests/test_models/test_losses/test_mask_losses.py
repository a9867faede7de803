"""Tests of the mask losses and their pairwise (cost-matrix) forms."""
import math

import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from mmseg_maskformer.models.losses.mask_losses import (dice_loss, pairwise_class_cost,
                                                        pairwise_dice_cost, pairwise_focal_cost,
                                                        pairwise_sigmoid_ce_cost, sigmoid_ce_loss,
                                                        sigmoid_focal_loss, stable_cost_matrix)

Q, N, P = 5, 3, 37


def _data(seed: int = 0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    inputs = (torch.randn(Q, P, generator=gen) * 3).to(dtype)
    targets = (torch.rand(N, P, generator=gen) > 0.6).to(dtype)
    return inputs, targets


def _focal_by_hand(x: torch.Tensor, t: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    """Mean focal loss of one pair, written from the definition."""
    p = torch.sigmoid(x.double())
    t = t.double()
    loss_pos = -torch.log(p) * (1 - p)**gamma
    loss_neg = -torch.log(1 - p) * p**gamma
    if alpha >= 0:
        loss_pos, loss_neg = alpha * loss_pos, (1 - alpha) * loss_neg
    return (t * loss_pos + (1 - t) * loss_neg).mean()


def test_pairwise_sigmoid_ce_cost_matches_loop():
    x, t = _data(0)
    cost = pairwise_sigmoid_ce_cost(x, t)
    assert cost.shape == (Q, N) and cost.dtype == torch.float32
    for i in range(Q):
        for j in range(N):
            ref = F.binary_cross_entropy_with_logits(x[i], t[j])
            assert cost[i, j].item() == pytest.approx(ref.item(), rel=1e-5, abs=1e-6)
            single = sigmoid_ce_loss(x[i][None], t[j][None], 1)
            assert cost[i, j].item() == pytest.approx(single.item(), rel=1e-5, abs=1e-6)


def test_pairwise_sigmoid_ce_cost_with_large_logits_and_many_points():
    """The one-softplus form against BCE in float64 at the matcher's 12544 points."""
    gen = torch.Generator().manual_seed(8)
    x = torch.randn(5, 12544, generator=gen) * 30
    t = (torch.rand(3, 12544, generator=gen) > 0.5).float()
    want = torch.stack([
        torch.stack([F.binary_cross_entropy_with_logits(x[i].double(), t[j].double())
                     for j in range(3)]) for i in range(5)])
    torch.testing.assert_close(pairwise_sigmoid_ce_cost(x, t).double(), want, rtol=1e-5,
                               atol=1e-4)


def test_pairwise_dice_cost_matches_loop():
    x, t = _data(1)
    cost = pairwise_dice_cost(x, t)
    assert cost.shape == (Q, N)
    for i in range(Q):
        for j in range(N):
            ref = dice_loss(x[i][None], t[j][None], 1)
            assert cost[i, j].item() == pytest.approx(ref.item(), rel=1e-5, abs=1e-6)
            p = torch.sigmoid(x[i].double())
            by_hand = 1 - (2 * (p * t[j]).sum() + 1) / (p.sum() + t[j].sum() + 1)
            assert cost[i, j].item() == pytest.approx(by_hand.item(), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize('alpha, gamma', [(0.25, 2.0), (-1.0, 2.0), (0.5, 0.0)])
def test_pairwise_focal_cost_matches_loop(alpha, gamma):
    x, t = _data(2)
    cost = pairwise_focal_cost(x, t, alpha=alpha, gamma=gamma)
    assert cost.shape == (Q, N)
    for i in range(Q):
        for j in range(N):
            ref = sigmoid_focal_loss(x[i][None], t[j][None], 1, alpha=alpha, gamma=gamma)
            assert cost[i, j].item() == pytest.approx(ref.item(), rel=1e-5, abs=1e-7)
            by_hand = _focal_by_hand(x[i], t[j], alpha, gamma)
            assert cost[i, j].item() == pytest.approx(by_hand.item(), rel=1e-4, abs=1e-7)


def test_focal_gamma_zero_alpha_negative_is_bce():
    x, t = _data(3)
    focal = sigmoid_focal_loss(x[:N], t, 2.0, alpha=-1, gamma=0.0)
    ce = sigmoid_ce_loss(x[:N], t, 2.0)
    torch.testing.assert_close(focal, ce)


def test_loss_normalisation():
    x, t = _data(4)
    x = x[:N]
    per_mask = torch.stack([dice_loss(x[i][None], t[i][None], 1) for i in range(N)])
    torch.testing.assert_close(dice_loss(x, t, 2.5), per_mask.sum() / 2.5)
    per_mask = F.binary_cross_entropy_with_logits(x, t, reduction='none').mean(1)
    torch.testing.assert_close(sigmoid_ce_loss(x, t, 4.0), per_mask.sum() / 4.0)


def test_pairwise_class_cost():
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(Q, 4, generator=gen)
    labels = torch.tensor([2, 0, 2])
    cost = pairwise_class_cost(logits, labels)
    prob = logits.softmax(-1)
    assert cost.shape == (Q, 3)
    for i in range(Q):
        for j, lab in enumerate(labels.tolist()):
            assert cost[i, j].item() == pytest.approx(-prob[i, lab].item(), abs=1e-7)
    # bf16 logits are handled in fp32
    assert pairwise_class_cost(logits.bfloat16(), labels).dtype == torch.float32


def test_stable_cost_matrix():
    cost = torch.tensor([[1.0, float('nan'), -2.0], [float('inf'), 3.5, float('-inf')],
                         [0.5, -1.0, 2.0]])
    finite = torch.isfinite(cost)
    out = stable_cost_matrix(cost.clone())
    assert bool(torch.isfinite(out).all())
    # finite entries unchanged
    torch.testing.assert_close(out[finite], cost[finite], rtol=0, atol=0)
    max_finite, min_finite = cost[finite].max(), cost[finite].min()
    assert out[0, 1] > max_finite  # NaN
    assert out[1, 0] > max_finite  # +Inf
    assert out[1, 2] < min_finite  # -Inf
    rows, cols = linear_sum_assignment(out.numpy())
    assert len(rows) == 3
    # the -Inf entry is the most attractive one, NaN / +Inf are avoided
    pairs = set(zip(rows.tolist(), cols.tolist()))
    assert (1, 2) in pairs and (0, 1) not in pairs and (1, 0) not in pairs


def test_stable_cost_matrix_all_finite_and_all_nonfinite():
    cost = torch.randn(3, 2)
    assert torch.equal(stable_cost_matrix(cost), cost)
    bad = torch.full((3, 2), float('nan'))
    out = stable_cost_matrix(bad)
    assert bool(torch.isfinite(out).all())
    assert len(linear_sum_assignment(out.numpy())[0]) == 2


def test_losses_with_bf16_inputs_are_fp32():
    x, t = _data(6)
    x_bf16 = (x * 20).bfloat16()  # large logits: bf16 arithmetic would lose a lot
    t_bf16 = t.bfloat16()
    x32, t32 = x_bf16.float(), t_bf16.float()
    for fn in (dice_loss, sigmoid_ce_loss, sigmoid_focal_loss):
        out = fn(x_bf16[:N], t_bf16, 3.0)
        assert out.dtype == torch.float32, fn.__name__
        assert bool(torch.isfinite(out)), fn.__name__
        # identical to computing on the up-cast inputs: the maths ran in fp32
        torch.testing.assert_close(out, fn(x32[:N], t32, 3.0), rtol=0, atol=0)
    for fn in (pairwise_dice_cost, pairwise_sigmoid_ce_cost, pairwise_focal_cost):
        out = fn(x_bf16, t_bf16)
        assert out.dtype == torch.float32, fn.__name__
        assert bool(torch.isfinite(out).all()), fn.__name__
        torch.testing.assert_close(out, fn(x32, t32), rtol=0, atol=0)


def test_losses_finite_for_extreme_logits():
    x = torch.tensor([[200.0, -200.0, 0.0, 90.0]])
    t = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    for fn in (dice_loss, sigmoid_ce_loss, sigmoid_focal_loss):
        assert bool(torch.isfinite(fn(x, t, 1))), fn.__name__
    for fn in (pairwise_dice_cost, pairwise_sigmoid_ce_cost, pairwise_focal_cost):
        assert bool(torch.isfinite(fn(x, t)).all()), fn.__name__
    # BCE of logit 90 against 0 is ~90 / 4 on average with the other terms
    expected = (0.0 + 0.0 + math.log(2) + 90.0) / 4
    assert sigmoid_ce_loss(x, t, 1).item() == pytest.approx(expected, rel=1e-5)


def test_pairwise_costs_are_fp32_under_autocast():
    """The module promises fp32 pairwise costs "whatever the autocast state".

    Under CPU bf16 autocast the ``@`` inside pairwise_sigmoid_ce_cost /
    pairwise_focal_cost / pairwise_dice_cost runs in bf16 unless autocast is
    disabled inside the function (currently only the matcher disables it).
    """
    x, t = _data(7)
    x = x * 4
    ref = {fn: fn(x, t) for fn in (pairwise_dice_cost, pairwise_sigmoid_ce_cost,
                                   pairwise_focal_cost)}
    with torch.autocast(device_type='cpu', dtype=torch.bfloat16):
        for fn, expected in ref.items():
            out = fn(x, t)
            assert out.dtype == torch.float32, fn.__name__
            torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6,
                                       msg=f'{fn.__name__} not computed in fp32 under autocast')
