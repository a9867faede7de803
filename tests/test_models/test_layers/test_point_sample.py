"""Tests of point_sample, mask_uncertainty and sample_uncertain_points."""

import numpy as np
import pytest
import torch

from bilinear_reference import bilinear_zero_pad
from mmseg_maskformer.models.layers.point_sample import (mask_uncertainty, point_sample,
                                                         sample_uncertain_points)


def test_point_sample_matches_brute_force_bilinear():
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(2, 3, 5, 7, generator=gen, dtype=torch.float64)
    points = torch.rand(2, 40, 2, generator=gen, dtype=torch.float64)
    # include the image corners and edges, where zero padding matters
    points[:, :4] = torch.tensor([[0., 0.], [1., 1.], [0., 1.], [1., 0.]], dtype=torch.float64)
    points[:, 4] = torch.tensor([0.5, 0.0], dtype=torch.float64)
    out = point_sample(inputs, points)
    assert out.shape == (2, 3, 40)
    assert out.dtype == torch.float64
    expected = np.zeros((2, 3, 40))
    for n in range(2):
        for c in range(3):
            for p in range(40):
                x, y = points[n, p].tolist()
                expected[n, c, p] = bilinear_zero_pad(inputs[n, c].numpy(), x, y)
    np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=1e-10)
    # corner (0, 0) only sees a quarter of the top-left pixel
    np.testing.assert_allclose(out[:, :, 0].numpy(), 0.25 * inputs[:, :, 0, 0].numpy(),
                               atol=1e-12)


@pytest.mark.parametrize('dtype', [torch.float64, torch.bfloat16])
def test_point_sample_shares_points_of_batch_one(dtype):
    gen = torch.Generator().manual_seed(7)
    inputs = torch.randn(4, 2, 6, 5, generator=gen).to(dtype)
    points = torch.rand(1, 30, 2, generator=gen, dtype=torch.float64) * 1.2 - 0.1
    shared = point_sample(inputs, points)
    copies = point_sample(inputs, points.expand(4, -1, -1).contiguous())
    assert shared.shape == (4, 2, 30) and shared.dtype == dtype
    assert torch.equal(shared, copies)
    assert torch.equal(point_sample(inputs, points[:, :, None]), copies[..., None])


def test_point_sample_pixel_centres_are_exact():
    gen = torch.Generator().manual_seed(1)
    h, w = 4, 6
    inputs = torch.randn(1, 2, h, w, generator=gen)
    ii, jj = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    points = torch.stack(((jj.flatten() + 0.5) / w, (ii.flatten() + 0.5) / h), -1)[None]
    out = point_sample(inputs, points)
    torch.testing.assert_close(out, inputs.flatten(2), rtol=0, atol=1e-6)


def test_point_sample_grid_points_and_align_corners():
    gen = torch.Generator().manual_seed(2)
    inputs = torch.randn(2, 3, 5, 5, generator=gen, dtype=torch.float64)
    points = torch.rand(2, 4, 6, 2, generator=gen, dtype=torch.float64)
    out = point_sample(inputs, points)
    assert out.shape == (2, 3, 4, 6)
    flat = point_sample(inputs, points.flatten(1, 2))
    torch.testing.assert_close(out.flatten(2), flat)
    # align_corners=True: (0, 0) and (1, 1) are the centres of the corner pixels
    corners = torch.tensor([[[0., 0.], [1., 1.]]], dtype=torch.float64).expand(2, -1, -1)
    out_ac = point_sample(inputs, corners, align_corners=True)
    torch.testing.assert_close(out_ac[..., 0], inputs[:, :, 0, 0])
    torch.testing.assert_close(out_ac[..., 1], inputs[:, :, -1, -1])


def test_point_sample_casts_points_to_input_dtype():
    inputs = torch.ones(1, 1, 4, 4, dtype=torch.float64)
    points = torch.full((1, 3, 2), 0.5, dtype=torch.float32)
    out = point_sample(inputs, points)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, torch.ones(1, 1, 3, dtype=torch.float64))


def test_mask_uncertainty():
    logits = torch.tensor([-3.0, -0.5, 0.0, 0.2, 4.0])
    torch.testing.assert_close(mask_uncertainty(logits), torch.tensor([-3.0, -0.5, 0.0, -0.2,
                                                                       -4.0]))


def _ramp_logits(num_masks: int = 4, size: int = 32, scale: float = 10.0) -> torch.Tensor:
    """Logits ``scale * (x - 0.5)``: a clear boundary on the vertical line x = 0.5."""
    xs = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    ramp = scale * (xs - 0.5)
    return ramp.view(1, 1, 1, size).expand(num_masks, 1, size, size).contiguous()


def test_sample_uncertain_points_shape_and_range():
    logits = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    points = sample_uncertain_points(logits, 50, 3.0, 0.75,
                                     generator=torch.Generator().manual_seed(1))
    assert points.shape == (3, 50, 2)
    assert points.dtype == torch.float32
    assert bool((points >= 0).all()) and bool((points <= 1).all())


def test_sample_uncertain_points_importance_part_is_top_uncertain_candidates():
    logits = _ramp_logits()
    num_points, oversample, importance = 100, 3.0, 0.75
    points = sample_uncertain_points(logits, num_points, oversample, importance,
                                     generator=torch.Generator().manual_seed(3))
    num_uncertain = int(importance * num_points)
    num_sampled = int(num_points * oversample)
    # the same generator state reproduces the candidates
    gen = torch.Generator().manual_seed(3)
    candidates = torch.rand(4, num_sampled, 2, generator=gen)
    cand_unc = mask_uncertainty(point_sample(logits, candidates))[:, 0]
    sel_unc = mask_uncertainty(point_sample(logits, points[:, :num_uncertain]))[:, 0]
    for r in range(4):
        # every selected point is one of the candidates ...
        diff = (points[r, :num_uncertain, None] - candidates[r, None]).abs().amax(-1)
        assert bool((diff.min(1).values == 0).all())
        # ... and they are the num_uncertain most uncertain ones
        top = cand_unc[r].sort(descending=True).values[:num_uncertain]
        torch.testing.assert_close(sel_unc[r].sort(descending=True).values, top)

    # statistically, importance points hug the boundary x = 0.5, random ones do not
    near = (points[..., 0] - 0.5).abs() < 0.15
    frac_importance = near[:, :num_uncertain].float().mean().item()
    frac_random = near[:, num_uncertain:].float().mean().item()
    assert frac_importance > 0.9
    assert frac_random < 0.6
    assert frac_importance > frac_random + 0.3


def test_sample_uncertain_points_ratio_zero_is_uniform():
    logits = _ramp_logits()
    points = sample_uncertain_points(logits, 400, 3.0, 0.0,
                                     generator=torch.Generator().manual_seed(4))
    assert points.shape == (4, 400, 2)
    near = ((points[..., 0] - 0.5).abs() < 0.15).float().mean().item()
    # uniform points: P(|x - 0.5| < 0.15) = 0.3
    assert abs(near - 0.3) < 0.06
    assert bool((points >= 0).all()) and bool((points <= 1).all())


def test_sample_uncertain_points_ratio_one():
    logits = _ramp_logits()
    points = sample_uncertain_points(logits, 60, 4.0, 1.0,
                                     generator=torch.Generator().manual_seed(5))
    assert points.shape == (4, 60, 2)
    # all points are importance points: (almost) all hug the boundary (zero padding
    # lowers |logit| near the top/bottom border, so a few may lie a bit further)
    near = ((points[..., 0] - 0.5).abs() < 0.15).float().mean().item()
    assert near > 0.9

    # oversample 1 and importance 1: exactly the candidates, re-ordered
    points = sample_uncertain_points(logits, 30, 1.0, 1.0,
                                     generator=torch.Generator().manual_seed(6))
    candidates = torch.rand(4, 30, 2, generator=torch.Generator().manual_seed(6))
    for r in range(4):
        key = lambda t: t[:, 0] * 10 + t[:, 1]  # noqa: E731  (sort pairs)
        torch.testing.assert_close(points[r][key(points[r]).argsort()],
                                   candidates[r][key(candidates[r]).argsort()])


def test_sample_uncertain_points_custom_uncertainty_fn():
    logits = _ramp_logits()
    # "uncertainty" = logit itself: picks the largest x
    points = sample_uncertain_points(logits, 20, 5.0, 1.0, uncertainty_fn=lambda t: t,
                                     generator=torch.Generator().manual_seed(7))
    assert bool((points[..., 0] > 0.6).all())


@pytest.mark.parametrize('oversample, importance', [(0.5, 0.5), (0.99, 0.0), (3.0, -0.1),
                                                    (3.0, 1.5)])
def test_sample_uncertain_points_bad_ratios(oversample, importance):
    with pytest.raises(ValueError):
        sample_uncertain_points(torch.zeros(1, 1, 4, 4), 10, oversample, importance)


def test_point_sample_low_precision_inputs_keep_point_precision():
    """bf16 mask logits (autocast / bf16 AMP) must be sampled at the fp32 points.

    The criterion samples bf16 predictions and fp32 targets at the same points; if
    the coordinates are rounded to bf16 (~2**-8 relative) the prediction is read up
    to ~half a pixel away at 128 px, far more than bf16's value rounding. Expected:
    the same as sampling the (already bf16) values in fp32, up to bf16 output rounding.
    """
    gen = torch.Generator().manual_seed(0)
    logits = (torch.randn(4, 1, 128, 128, generator=gen) * 5).bfloat16()
    points = torch.rand(4, 500, 2, generator=gen)
    out = point_sample(logits, points)
    assert out.dtype == torch.bfloat16
    expected = point_sample(logits.float(), points)
    torch.testing.assert_close(out.float(), expected, rtol=1e-2, atol=2e-2)
