"""Tests of SinePositionalEncoding against Mask2Former's PositionEmbeddingSine formula."""
import math

import numpy as np
import pytest
import torch

from mmseg_maskformer.models.layers.positional_encoding import SinePositionalEncoding


def _reference(num_feats: int, h: int, w: int, temperature: float = 10000.0,
               normalize: bool = True, scale: float = 2 * math.pi) -> np.ndarray:
    """Direct loops: channels [pos_y (num_feats), pos_x (num_feats)], sin/cos interleaved."""
    out = np.zeros((2 * num_feats, h, w))
    for i in range(h):
        for j in range(w):
            y = i + 1.0  # cumsum of ones
            x = j + 1.0
            if normalize:
                y = y / (h + 1e-6) * scale
                x = x / (w + 1e-6) * scale
            for k in range(num_feats):
                dim_t = temperature**(2 * (k // 2) / num_feats)
                fn = math.sin if k % 2 == 0 else math.cos
                out[k, i, j] = fn(y / dim_t)
                out[num_feats + k, i, j] = fn(x / dim_t)
    return out


@pytest.mark.parametrize('num_feats, h, w', [(8, 3, 5), (16, 4, 4), (6, 1, 7)])
def test_sine_positional_encoding_matches_formula(num_feats, h, w):
    pe = SinePositionalEncoding(num_feats=num_feats, normalize=True)
    x = torch.randn(2, 5, h, w)
    out = pe(x)
    assert out.shape == (2, 2 * num_feats, h, w)
    assert out.dtype == torch.float32
    expected = _reference(num_feats, h, w)
    np.testing.assert_allclose(out[0].numpy(), expected, rtol=0, atol=1e-5)
    # identical for every image of the batch
    torch.testing.assert_close(out[1], out[0])


def test_sine_positional_encoding_single_position():
    num_feats, h, w = 4, 6, 10
    out = SinePositionalEncoding(num_feats)(torch.zeros(1, 1, h, w))
    i, j = 2, 7
    y = (i + 1) / (h + 1e-6) * 2 * math.pi
    x = (j + 1) / (w + 1e-6) * 2 * math.pi
    dim = [10000**(2 * (k // 2) / num_feats) for k in range(num_feats)]  # [1, 1, 100, 100]
    expected = [math.sin(y / dim[0]), math.cos(y / dim[1]), math.sin(y / dim[2]),
                math.cos(y / dim[3]), math.sin(x / dim[0]), math.cos(x / dim[1]),
                math.sin(x / dim[2]), math.cos(x / dim[3])]
    np.testing.assert_allclose(out[0, :, i, j].numpy(), expected, atol=1e-6)
    # last row / column reach (almost) 2 pi: sin ~ 0, cos ~ 1 on the first pair
    assert out[0, 0, h - 1, 0].item() == pytest.approx(0.0, abs=1e-4)
    assert out[0, 1, h - 1, 0].item() == pytest.approx(1.0, abs=1e-4)


def test_sine_positional_encoding_axes_separate():
    out = SinePositionalEncoding(8)(torch.zeros(1, 3, 4, 5))[0]
    # y channels are constant along x, x channels constant along y
    torch.testing.assert_close(out[:8], out[:8, :, :1].expand(-1, -1, 5))
    torch.testing.assert_close(out[8:], out[8:, :1, :].expand(-1, 4, -1))


def test_sine_positional_encoding_unnormalized_and_dtype():
    out = SinePositionalEncoding(4, normalize=False)(torch.zeros(1, 1, 2, 3,
                                                                 dtype=torch.float64))
    assert out.dtype == torch.float64
    np.testing.assert_allclose(out[0].numpy(), _reference(4, 2, 3, normalize=False), atol=1e-6)
    out_bf16 = SinePositionalEncoding(4)(torch.zeros(1, 1, 2, 3, dtype=torch.bfloat16))
    assert out_bf16.dtype == torch.bfloat16
