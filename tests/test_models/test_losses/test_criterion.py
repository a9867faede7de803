"""Tests of MaskFormerCriterion (matching + class / mask / dice losses)."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData

from mmseg_maskformer.models.layers.factored_masks import FactoredMasks
from mmseg_maskformer.models.losses.criterion import MaskFormerCriterion
from mmseg_maskformer.models.matchers.hungarian_matcher import HungarianPointMatcher

K, Q, LAYERS, H, W, GT = 5, 4, 3, 16, 16, 64
MATCHER = dict(type='HungarianPointMatcher', num_points=64)


def _gt(labels, masks) -> InstanceData:
    return InstanceData(labels=torch.as_tensor(labels, dtype=torch.long), masks=masks)


def _block_masks(n: int, seed: int) -> torch.Tensor:
    """``n`` disjoint GT masks (GT x GT) made of 4x4 blocks (exact at 1/4 scale)."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, n + 1, (GT // 4, GT // 4), generator=gen)
    full = coarse.repeat_interleave(4, 0).repeat_interleave(4, 1)
    return torch.stack([full == i for i in range(n)])


def _preds(seed: int, b: int = 2, layers: int = LAYERS, requires_grad: bool = True):
    gen = torch.Generator().manual_seed(seed)
    cls = [torch.randn(b, Q, K + 1, generator=gen).requires_grad_(requires_grad)
           for _ in range(layers)]
    masks = [torch.randn(b, Q, H, W, generator=gen).requires_grad_(requires_grad)
             for _ in range(layers)]
    return cls, masks


def _expected_keys(layers: int = LAYERS):
    keys = {'loss_cls', 'loss_mask', 'loss_dice'}
    for i in range(layers - 1):
        keys |= {f'd{i}.loss_cls', f'd{i}.loss_mask', f'd{i}.loss_dice'}
    return keys


class StubMatcher:
    """Returns fixed indices per call, in image order."""

    def __init__(self, indices):
        self.indices = indices
        self.calls = 0

    def match(self, cls_logits, mask_logits, labels, masks):
        out = self.indices[self.calls % len(self.indices)]
        self.calls += 1
        return (torch.as_tensor(out[0], dtype=torch.long),
                torch.as_tensor(out[1], dtype=torch.long))


def test_keys_finite_and_backward():
    torch.manual_seed(0)
    crit = MaskFormerCriterion(num_classes=K, matcher=MATCHER, num_points=64)
    assert isinstance(crit.matcher, HungarianPointMatcher)
    cls, masks = _preds(0)
    gts = [_gt([0, 3], _block_masks(2, 1)), _gt([4, 1, 2], _block_masks(3, 2))]
    losses = crit(cls, masks, gts)
    assert set(losses) == _expected_keys()
    for k, v in losses.items():
        assert v.dim() == 0 and bool(torch.isfinite(v)), k
        assert v.item() > 0, k
    sum(losses.values()).backward()
    for t in cls + masks:
        assert t.grad is not None and bool(torch.isfinite(t.grad).all())
        assert t.grad.abs().sum() > 0


def test_no_deep_supervision():
    crit = MaskFormerCriterion(num_classes=K, matcher=MATCHER, num_points=32,
                               deep_supervision=False)
    cls, masks = _preds(1)
    losses = crit(cls, masks, [_gt([1], _block_masks(1, 0)), _gt([2], _block_masks(1, 3))])
    assert set(losses) == {'loss_cls', 'loss_mask', 'loss_dice'}


def test_image_without_segments_in_batch():
    torch.manual_seed(0)
    crit = MaskFormerCriterion(num_classes=K, matcher=MATCHER, num_points=64)
    cls, masks = _preds(2)
    gts = [_gt([2, 0], _block_masks(2, 4)),
           _gt([], torch.zeros(0, GT, GT, dtype=torch.bool))]
    losses = crit(cls, masks, gts)
    assert set(losses) == _expected_keys()
    assert all(bool(torch.isfinite(v)) for v in losses.values())
    assert losses['loss_mask'] > 0 and losses['loss_dice'] > 0
    sum(losses.values()).backward()
    # the empty image gets no mask gradient but a class gradient
    assert masks[-1].grad[1].abs().sum() == 0
    assert masks[-1].grad[0].abs().sum() > 0
    assert cls[-1].grad[1].abs().sum() > 0


def test_all_images_without_segments():
    crit = MaskFormerCriterion(num_classes=K, matcher=MATCHER, num_points=64,
                               no_object_weight=0.1)
    cls, masks = _preds(3)
    empty = [_gt([], torch.zeros(0, GT, GT, dtype=torch.bool)) for _ in range(2)]
    losses = crit(cls, masks, empty)
    assert set(losses) == _expected_keys()
    for k, v in losses.items():
        assert bool(torch.isfinite(v)), k
        if 'mask' in k or 'dice' in k:
            assert v.item() == 0.0, k
    # every query targets "no object": CE equals plain (weight-invariant) mean CE
    target = torch.full((2 * Q,), K)
    expected = 2.0 * F.cross_entropy(cls[-1].detach().reshape(-1, K + 1), target)
    assert losses['loss_cls'].item() == pytest.approx(expected.item(), rel=1e-5)
    sum(losses.values()).backward()
    grad = cls[-1].grad
    # gradient descent raises the "no object" logit and lowers the others
    assert bool((grad[..., K] < 0).all())
    assert bool((grad[..., :K] > 0).all())
    assert masks[-1].grad is not None and masks[-1].grad.abs().sum() == 0


def test_class_loss_with_forced_matching():
    no_obj = 0.3
    indices = [([2, 0], [1, 0]), ([], []), ([3], [0])]
    crit = MaskFormerCriterion(num_classes=K, matcher=StubMatcher(indices), cls_weight=1.7,
                               no_object_weight=no_obj, num_points=16)
    cls, masks = _preds(4, b=3, layers=1)
    gts = [_gt([4, 1], _block_masks(2, 5)), _gt([], torch.zeros(0, GT, GT, dtype=torch.bool)),
           _gt([2], _block_masks(1, 6))]
    losses = crit(cls, masks, gts)
    assert set(losses) == {'loss_cls', 'loss_mask', 'loss_dice'}
    # targets: image0 q2->label 1, q0->label 4; image2 q3->label 2; all else "no object"
    targets = [[4, K, 1, K], [K, K, K, K], [K, K, K, 2]]
    logits = cls[0].detach()
    num, den = 0.0, 0.0
    for b in range(3):
        for q in range(Q):
            t = targets[b][q]
            w = no_obj if t == K else 1.0
            logp = logits[b, q].log_softmax(-1)[t].item()
            num += -w * logp
            den += w
    assert losses['loss_cls'].item() == pytest.approx(1.7 * num / den, rel=1e-5)


def test_class_weight_vector_and_wrong_length():
    weights = [1.0, 2.0, 0.5, 1.0, 3.0, 0.2]
    crit = MaskFormerCriterion(num_classes=K, matcher=StubMatcher([([1], [0])]),
                               class_weight=weights, cls_weight=1.0, num_points=16)
    torch.testing.assert_close(crit.empty_weight, torch.tensor(weights))
    cls, masks = _preds(5, b=1, layers=1)
    loss = crit(cls, masks, [_gt([4], _block_masks(1, 7))])['loss_cls']
    target = torch.tensor([[K, 4, K, K]])
    expected = F.cross_entropy(cls[0].detach().transpose(1, 2), target, torch.tensor(weights))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)

    with pytest.raises(ValueError, match=r'class_weight has 5 entries.*num_classes=5.*6'):
        MaskFormerCriterion(num_classes=K, matcher=MATCHER, class_weight=[1.0] * 5)


def test_default_empty_weight():
    crit = MaskFormerCriterion(num_classes=K, matcher=MATCHER, no_object_weight=0.1)
    torch.testing.assert_close(crit.empty_weight, torch.tensor([1.0] * K + [0.1]))


def test_bad_config_and_labels():
    with pytest.raises(ValueError):
        MaskFormerCriterion(num_classes=K, matcher=MATCHER, mask_loss='bce')
    crit = MaskFormerCriterion(num_classes=K, matcher=MATCHER, num_points=16)
    cls, masks = _preds(6, b=1)
    with pytest.raises(ValueError, match='out of range'):
        crit(cls, masks, [_gt([K], _block_masks(1, 0))])


def _stripe_masks(bounds) -> torch.Tensor:
    """Full-height vertical stripes ``[x0, x1)`` (multiples of 4): no corners inside."""
    masks = torch.zeros(len(bounds), GT, GT, dtype=torch.bool)
    for i, (x0, x1) in enumerate(bounds):
        masks[i, :, x0:x1] = True
    return masks


def _perfect(gts, b: int, logit: float = 40.0):
    """Logits +/-logit matching the GT masks at 1/4 scale, correct classes.

    Query ``j`` predicts GT ``j``; the remaining queries predict "no object".
    """
    cls = torch.full((b, Q, K + 1), -20.0)
    cls[..., K] = 20.0
    masks = torch.full((b, Q, H, W), -logit)
    for i, gt in enumerate(gts):
        small = gt.masks[:, ::4, ::4]  # exact: GT boundaries lie on multiples of 4
        for j in range(len(gt.labels)):
            masks[i, j] = torch.where(small[j], logit, -logit)
            cls[i, j] = -20.0
            cls[i, j, gt.labels[j]] = 20.0
    return cls, masks


def _perfect_gts():
    return [_gt([1, 3], _stripe_masks([(0, 24), (24, 48)])),
            _gt([0], _stripe_masks([(16, 64)]))]


@pytest.mark.parametrize('mask_loss', ['sigmoid_ce', 'focal'])
def test_perfect_predictions_full_mask_mode(mask_loss):
    gts = _perfect_gts()
    cls, masks = _perfect(gts, 2)
    crit = MaskFormerCriterion(num_classes=K, matcher=dict(type='HungarianPointMatcher',
                                                           num_points=0), mask_loss=mask_loss,
                               num_points=0)
    losses = crit([cls], [masks], gts)
    assert losses['loss_mask'].item() < 1e-3
    assert losses['loss_dice'].item() < 1e-3
    assert losses['loss_cls'].item() < 1e-3


def test_perfect_predictions_point_mode():
    """Point mode: GT sampled bilinearly is soft on a thin band around the boundaries
    (and zero-padded at the image border), so even a perfect prediction keeps a small
    loss there; it must still be far below that of wrong predictions."""
    torch.manual_seed(0)
    gts = _perfect_gts()
    cls, masks = _perfect(gts, 2)
    crit = MaskFormerCriterion(num_classes=K, matcher=MATCHER, num_points=1024,
                               importance_sample_ratio=0.0)
    losses = crit([cls], [masks], gts)
    inverted = crit([cls], [-masks], gts)
    assert losses['loss_cls'].item() < 1e-3
    assert losses['loss_dice'].item() < 0.1
    assert losses['loss_mask'].item() < 0.05 * inverted['loss_mask'].item()
    assert losses['loss_dice'].item() < 0.15 * inverted['loss_dice'].item()


def test_full_mask_focal_mode_by_hand():
    indices = [([1, 3], [1, 0]), ([0], [0])]
    crit = MaskFormerCriterion(num_classes=K, matcher=StubMatcher(indices), mask_loss='focal',
                               num_points=0, mask_weight=20.0, dice_weight=1.0)
    cls, masks = _preds(7, b=2, layers=2)
    gts = [_gt([1, 3], _block_masks(2, 10)), _gt([2], _block_masks(1, 11))]
    losses = crit(cls, masks, gts)
    assert set(losses) == _expected_keys(2)
    num_masks = 3.0
    src = torch.stack([masks[-1][0, 1], masks[-1][0, 3], masks[-1][1, 0]]).detach()
    tgt = torch.stack([gts[0].masks[1], gts[0].masks[0], gts[1].masks[0]]).float()
    up = F.interpolate(src[:, None], size=(GT, GT), mode='bilinear',
                       align_corners=False)[:, 0].flatten(1)
    tgt = tgt.flatten(1)
    prob = up.sigmoid()
    ce = F.binary_cross_entropy_with_logits(up, tgt, reduction='none')
    p_t = prob * tgt + (1 - prob) * (1 - tgt)
    focal = ((0.25 * tgt + 0.75 * (1 - tgt)) * ce * (1 - p_t)**2).mean(1).sum() / num_masks
    dice = (1 - (2 * (prob * tgt).sum(1) + 1) / (prob.sum(1) + tgt.sum(1) + 1)).sum() / num_masks
    assert losses['loss_mask'].item() == pytest.approx(20.0 * focal.item(), rel=1e-4)
    assert losses['loss_dice'].item() == pytest.approx(dice.item(), rel=1e-4)
    sum(losses.values()).backward()
    assert bool(torch.isfinite(masks[0].grad).all())


def test_mask_loss_normaliser():
    """Mask losses are summed over matched masks and divided by the GT count."""
    torch.manual_seed(0)
    gts = [_gt([1, 3], _block_masks(2, 12)), _gt([0], _block_masks(1, 13))]
    indices = [([0, 1], [0, 1]), ([2], [0])]
    crit = MaskFormerCriterion(num_classes=K, matcher=StubMatcher(indices), num_points=0,
                               mask_weight=1.0, dice_weight=1.0)
    cls, masks = _preds(8, b=2, layers=1)
    losses = crit(cls, masks, gts)
    per_mask = []
    for b, (p, g) in enumerate(indices):
        for qi, gi in zip(p, g):
            up = F.interpolate(masks[0][b, qi][None, None].detach(), size=(GT, GT),
                               mode='bilinear', align_corners=False).flatten()
            per_mask.append(F.binary_cross_entropy_with_logits(up, gts[b].masks[gi].flatten()
                                                               .float()))
    assert losses['loss_mask'].item() == pytest.approx(sum(per_mask).item() / 3, rel=1e-5)
    assert math.isfinite(losses['loss_dice'].item())


def test_built_from_registry():
    from mmseg_maskformer.registry import MODELS
    crit = MODELS.build(dict(type='MaskFormerCriterion', num_classes=K, matcher=MATCHER))
    assert isinstance(crit, MaskFormerCriterion)
    assert isinstance(crit.matcher, HungarianPointMatcher)


@pytest.mark.parametrize('num_points', [64, 0])
def test_factored_masks_give_the_losses_and_gradients_of_full_logits(num_points):
    """Same random points, same matches, same losses and gradients in float64."""
    crit = MaskFormerCriterion(num_classes=K, num_points=num_points,
                               matcher=dict(MATCHER, num_points=num_points))
    gen = torch.Generator().manual_seed(11)
    cls = [torch.randn(2, Q, K + 1, generator=gen, dtype=torch.float64) for _ in range(LAYERS)]
    embeds = [torch.randn(2, Q, 8, generator=gen, dtype=torch.float64).requires_grad_()
              for _ in range(LAYERS)]
    features = torch.randn(2, 8, H, W, generator=gen, dtype=torch.float64).requires_grad_()
    gts = [_gt([0, 3], _block_masks(2, 1)), _gt([], torch.zeros(0, GT, GT, dtype=torch.bool))]
    torch.manual_seed(5)
    full = crit(cls, [FactoredMasks(e, features).logits() for e in embeds], gts)
    torch.manual_seed(5)
    fact = crit(cls, [FactoredMasks(e, features) for e in embeds], gts)
    assert fact.keys() == full.keys()
    for key in full:
        torch.testing.assert_close(fact[key], full[key], rtol=0, atol=1e-10)
    inputs = embeds + [features]
    grads_full = torch.autograd.grad(sum(full.values()), inputs)
    grads_fact = torch.autograd.grad(sum(fact.values()), inputs)
    for a, b in zip(grads_fact, grads_full):
        assert float(b.abs().sum()) > 0
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_layers_sharing_features_give_the_losses_and_gradients_of_separate_products():
    """One product for all layers' matched logits, or one per layer: same results."""
    crit = MaskFormerCriterion(num_classes=K, num_points=64, matcher=dict(MATCHER, num_points=64))
    gen = torch.Generator().manual_seed(12)
    cls = [torch.randn(2, Q, K + 1, generator=gen, dtype=torch.float64) for _ in range(LAYERS)]
    embeds = [torch.randn(2, Q, 8, generator=gen, dtype=torch.float64).requires_grad_()
              for _ in range(LAYERS)]
    features = torch.randn(2, 8, H, W, generator=gen, dtype=torch.float64).requires_grad_()
    gts = [_gt([0, 3], _block_masks(2, 1)), _gt([1], _block_masks(1, 2))]
    shared = [FactoredMasks(e, features) for e in embeds]
    # views of the features: other tensor objects, so each layer forms its own product
    separate = [FactoredMasks(e, features.view_as(features)) for e in embeds]
    assert crit._matched_sources(separate, [[]] * LAYERS) == [None] * LAYERS
    torch.manual_seed(6)
    one = crit(cls, shared, gts)
    torch.manual_seed(6)
    each = crit(cls, separate, gts)
    assert one.keys() == each.keys()
    for key in one:
        torch.testing.assert_close(one[key], each[key], rtol=0, atol=1e-10)
    inputs = embeds + [features]
    for a, b in zip(torch.autograd.grad(sum(one.values()), inputs),
                    torch.autograd.grad(sum(each.values()), inputs)):
        assert float(b.abs().sum()) > 0
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
