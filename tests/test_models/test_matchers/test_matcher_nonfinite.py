"""The matcher never fails on NaN/Inf costs: it sanitises, counts and rate-limits its warnings."""
import pytest
import torch

from mmseg_maskformer.models.matchers import hungarian_matcher
from mmseg_maskformer.models.matchers.hungarian_matcher import HungarianPointMatcher


def problem(q: int = 6, n: int = 3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    cls_logits = torch.randn(q, 5, generator=gen)
    mask_logits = torch.randn(q, 8, 8, generator=gen)
    labels = torch.randint(0, 4, (n, ), generator=gen)
    masks = torch.rand(n, 8, 8, generator=gen) > 0.5
    return cls_logits, mask_logits, labels, masks


def valid(pred_idx, gt_idx, q, n):
    return (len(pred_idx) == len(gt_idx) == min(q, n)
            and len(set(pred_idx.tolist())) == len(pred_idx)
            and len(set(gt_idx.tolist())) == len(gt_idx)
            and all(0 <= p < q for p in pred_idx.tolist())
            and all(0 <= g < n for g in gt_idx.tolist()))


@pytest.mark.parametrize('bad', [float('nan'), float('inf'), float('-inf')])
@pytest.mark.parametrize('where', ['cls', 'mask', 'both'])
def test_nonfinite_logits_give_a_valid_assignment(bad, where):
    matcher = HungarianPointMatcher(num_points=16)
    cls_logits, mask_logits, labels, masks = problem()
    if where in ('cls', 'both'):
        cls_logits[0] = bad
    if where in ('mask', 'both'):
        mask_logits[2] = bad
    cost = matcher.cost_matrix(cls_logits, mask_logits, labels, masks)
    sanitized = matcher.sanitize(cost)
    assert bool(torch.isfinite(sanitized).all())
    pred_idx, gt_idx = matcher.match(cls_logits, mask_logits, labels, masks)
    assert valid(pred_idx, gt_idx, 6, 3)
    if not bool(torch.isfinite(cost).all()):
        assert matcher.num_nonfinite_images == 2  # sanitize() above and match()


def test_counts_and_power_of_two_warnings(monkeypatch):
    lines = []
    monkeypatch.setattr(hungarian_matcher, 'print_log',
                        lambda msg, *args, **kwargs: lines.append(msg))
    matcher = HungarianPointMatcher(num_points=16)
    cls_logits, mask_logits, labels, masks = problem(q=4, n=2)
    nan_cls = torch.full_like(cls_logits, float('nan'))
    for _ in range(9):
        pred_idx, gt_idx = matcher.match(nan_cls, mask_logits, labels, masks)
        assert valid(pred_idx, gt_idx, 4, 2)
    matcher.match(cls_logits, mask_logits, labels, masks)  # finite: not counted
    assert matcher.num_nonfinite_images == 9
    assert matcher.num_nonfinite_costs == 9 * 4 * 2
    assert len(lines) == 4  # images 1, 2, 4 and 8
    assert '8 of 8 matching costs' in lines[-1] and '64 non-finite costs in 8 images' in lines[-1]
