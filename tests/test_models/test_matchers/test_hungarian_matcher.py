"""Tests of HungarianPointMatcher against brute-force assignment."""
import itertools

import pytest
import torch
import torch.nn.functional as F

from mmseg_maskformer.models.layers.point_sample import point_sample
from mmseg_maskformer.models.losses.mask_losses import (pairwise_class_cost, pairwise_dice_cost,
                                                        pairwise_focal_cost,
                                                        pairwise_sigmoid_ce_cost)
from mmseg_maskformer.models.matchers import hungarian_matcher
from mmseg_maskformer.models.matchers.hungarian_matcher import HungarianPointMatcher

NUM_CLASSES = 4


def _problem(seed: int, q: int, n: int, size=(8, 8), gt_size=(16, 16)):
    gen = torch.Generator().manual_seed(seed)
    cls_logits = torch.randn(q, NUM_CLASSES + 1, generator=gen) * 2
    mask_logits = torch.randn(q, *size, generator=gen) * 3
    labels = torch.randint(0, NUM_CLASSES, (n,), generator=gen)
    gt_masks = torch.rand(n, *gt_size, generator=gen) > 0.5
    return cls_logits, mask_logits, labels, gt_masks


def _brute_force_min(cost: torch.Tensor) -> float:
    q, n = cost.shape
    best = float('inf')
    for perm in itertools.permutations(range(q), n):  # query perm[j] -> target j
        best = min(best, sum(cost[perm[j], j].item() for j in range(n)))
    return best


def _check_indices(pred_idx, gt_idx, q, n):
    k = min(q, n)
    assert pred_idx.dtype == torch.long and gt_idx.dtype == torch.long
    assert pred_idx.shape == (k,) and gt_idx.shape == (k,)
    assert len(set(pred_idx.tolist())) == k and len(set(gt_idx.tolist())) == k
    assert pred_idx.tolist() == sorted(pred_idx.tolist())
    assert all(0 <= i < q for i in pred_idx.tolist())
    assert all(0 <= j < n for j in gt_idx.tolist())


@pytest.mark.parametrize('num_points, mask_cost', [(50, 'sigmoid_ce'), (0, 'sigmoid_ce'),
                                                   (0, 'focal'), (30, 'focal')])
def test_match_equals_brute_force(num_points, mask_cost):
    matcher = HungarianPointMatcher(cls_weight=2.0, mask_weight=5.0, dice_weight=5.0,
                                    num_points=num_points, mask_cost=mask_cost)
    trials = 0
    for seed in range(12):
        q = 3 + seed % 4  # 3..6
        n = 1 + (seed + seed // 4) % 4  # 1..4
        if n > q:
            continue
        trials += 1
        problem = _problem(seed, q, n)
        cost = matcher.cost_matrix(*problem, generator=torch.Generator().manual_seed(100 + seed))
        assert cost.shape == (q, n) and cost.dtype == torch.float32
        pred_idx, gt_idx = matcher.match(*problem,
                                         generator=torch.Generator().manual_seed(100 + seed))
        _check_indices(pred_idx, gt_idx, q, n)
        total = cost[pred_idx, gt_idx].sum().item()
        assert total == pytest.approx(_brute_force_min(cost), abs=1e-4)
    assert trials >= 8


def test_match_more_targets_than_queries():
    matcher = HungarianPointMatcher(num_points=0)
    problem = _problem(3, q=2, n=4)
    cost = matcher.cost_matrix(*problem)
    pred_idx, gt_idx = matcher.match(*problem)
    _check_indices(pred_idx, gt_idx, 2, 4)
    # brute force over which 2 targets the 2 queries take
    best = min(cost[0, a].item() + cost[1, b].item()
               for a, b in itertools.permutations(range(4), 2))
    assert cost[pred_idx, gt_idx].sum().item() == pytest.approx(best, abs=1e-5)


def test_cost_matrix_full_mask_mode_by_hand():
    matcher = HungarianPointMatcher(cls_weight=1.5, mask_weight=3.0, dice_weight=0.5,
                                    num_points=0)
    cls_logits, mask_logits, labels, gt_masks = _problem(7, q=4, n=3)
    cost = matcher.cost_matrix(cls_logits, mask_logits, labels, gt_masks)
    tgt = F.interpolate(gt_masks[:, None].float(), size=(8, 8), mode='nearest')[:, 0].flatten(1)
    pred = mask_logits.flatten(1)
    for i in range(4):
        for j in range(3):
            expected = (-1.5 * cls_logits[i].softmax(-1)[labels[j]] +
                        3.0 * F.binary_cross_entropy_with_logits(pred[i], tgt[j]) +
                        0.5 * pairwise_dice_cost(pred[i][None], tgt[j][None])[0, 0])
            assert cost[i, j].item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-5)


def test_cost_matrix_point_mode_uses_same_points():
    matcher = HungarianPointMatcher(cls_weight=2.0, mask_weight=5.0, dice_weight=5.0,
                                    num_points=40, mask_cost='focal')
    cls_logits, mask_logits, labels, gt_masks = _problem(8, q=4, n=2)
    cost = matcher.cost_matrix(cls_logits, mask_logits, labels, gt_masks,
                               generator=torch.Generator().manual_seed(5))
    points = torch.rand(1, 40, 2, generator=torch.Generator().manual_seed(5))
    pred = point_sample(mask_logits[:, None], points.expand(4, -1, -1))[:, 0]
    tgt = point_sample(gt_masks[:, None].float(), points.expand(2, -1, -1))[:, 0]
    expected = (2.0 * pairwise_class_cost(cls_logits, labels) +
                5.0 * pairwise_focal_cost(pred, tgt) + 5.0 * pairwise_dice_cost(pred, tgt))
    torch.testing.assert_close(cost, expected)
    # same seed -> same cost, another seed -> different points -> different cost
    again = matcher.cost_matrix(cls_logits, mask_logits, labels, gt_masks,
                                generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(cost, again, rtol=0, atol=0)
    other = matcher.cost_matrix(cls_logits, mask_logits, labels, gt_masks,
                                generator=torch.Generator().manual_seed(6))
    assert not torch.equal(cost, other)
    # sigmoid-CE mode differs from focal mode
    ce = HungarianPointMatcher(num_points=40).cost_matrix(
        cls_logits, mask_logits, labels, gt_masks, generator=torch.Generator().manual_seed(5))
    expected_ce = (2.0 * pairwise_class_cost(cls_logits, labels) +
                   5.0 * pairwise_sigmoid_ce_cost(pred, tgt) + 5.0 * pairwise_dice_cost(pred, tgt))
    torch.testing.assert_close(ce, expected_ce)


def test_match_recovers_obvious_assignment():
    """Queries whose masks and classes equal a permutation of the targets match it."""
    gen = torch.Generator().manual_seed(0)
    gt_masks = torch.zeros(3, 16, 16, dtype=torch.bool)
    gt_masks[0, :8] = True
    gt_masks[1, 8:, :8] = True
    gt_masks[2, 8:, 8:] = True
    labels = torch.tensor([1, 3, 0])
    perm = [4, 0, 2]  # query perm[j] predicts target j
    mask_logits = torch.randn(5, 16, 16, generator=gen) - 3
    cls_logits = torch.zeros(5, NUM_CLASSES + 1)
    for j, qi in enumerate(perm):
        mask_logits[qi] = torch.where(gt_masks[j], 8.0, -8.0)
        cls_logits[qi, labels[j]] = 6.0
    matcher = HungarianPointMatcher(num_points=200)
    pred_idx, gt_idx = matcher.match(cls_logits, mask_logits, labels, gt_masks,
                                     generator=torch.Generator().manual_seed(1))
    assert pred_idx.tolist() == [0, 2, 4]
    assert gt_idx.tolist() == [1, 2, 0]


def test_match_empty_targets():
    matcher = HungarianPointMatcher(num_points=10)
    cls_logits, mask_logits, _, _ = _problem(0, q=4, n=1)
    pred_idx, gt_idx = matcher.match(cls_logits, mask_logits, torch.zeros(0, dtype=torch.long),
                                     torch.zeros(0, 16, 16, dtype=torch.bool))
    assert pred_idx.shape == (0,) and gt_idx.shape == (0,)
    assert pred_idx.dtype == torch.long and gt_idx.dtype == torch.long


def test_match_with_nan_logits_warns_and_assigns(monkeypatch):
    calls = []
    monkeypatch.setattr(hungarian_matcher, 'print_log',
                        lambda msg, *args, **kwargs: calls.append((msg, kwargs)))
    matcher = HungarianPointMatcher(num_points=20)
    cls_logits, mask_logits, labels, gt_masks = _problem(1, q=5, n=3)
    mask_logits[1] = float('nan')
    cls_logits[3, 0] = float('nan')
    pred_idx, gt_idx = matcher.match(cls_logits, mask_logits, labels, gt_masks,
                                     generator=torch.Generator().manual_seed(0))
    _check_indices(pred_idx, gt_idx, 5, 3)
    # the NaN queries are avoided when clean ones are available
    assert 1 not in pred_idx.tolist() and 3 not in pred_idx.tolist()
    assert len(calls) == 1
    assert 'non-finite' in calls[0][0]
    assert calls[0][1].get('level') == 30  # logging.WARNING

    # everything NaN: still a valid assignment
    calls.clear()
    pred_idx, gt_idx = matcher.match(torch.full_like(cls_logits, float('nan')),
                                     torch.full_like(mask_logits, float('nan')), labels,
                                     gt_masks)
    _check_indices(pred_idx, gt_idx, 5, 3)
    assert len(calls) == 1


def test_match_no_warning_when_finite(monkeypatch):
    calls = []
    monkeypatch.setattr(hungarian_matcher, 'print_log',
                        lambda msg, *args, **kwargs: calls.append(msg))
    HungarianPointMatcher(num_points=20).match(*_problem(2, q=4, n=2))
    assert calls == []


def test_match_bf16_inputs():
    matcher = HungarianPointMatcher(num_points=30)
    cls_logits, mask_logits, labels, gt_masks = _problem(4, q=4, n=2)
    cost = matcher.cost_matrix(cls_logits.bfloat16(), mask_logits.bfloat16(), labels, gt_masks)
    assert cost.dtype == torch.float32
    pred_idx, gt_idx = matcher.match(cls_logits.bfloat16(), mask_logits.bfloat16(), labels,
                                     gt_masks)
    _check_indices(pred_idx, gt_idx, 4, 2)


def test_matcher_bad_config():
    with pytest.raises(ValueError):
        HungarianPointMatcher(mask_cost='dice')
    with pytest.raises(ValueError):
        HungarianPointMatcher(cls_weight=0, mask_weight=0, dice_weight=0)


def test_matcher_registered():
    from mmseg_maskformer.registry import TASK_UTILS
    matcher = TASK_UTILS.build(dict(type='HungarianPointMatcher', num_points=7))
    assert isinstance(matcher, HungarianPointMatcher) and matcher.num_points == 7
