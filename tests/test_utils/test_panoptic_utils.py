import numpy as np
import pytest

from mmseg_maskformer.utils import OFFSET, id2rgb, rgb2id


def test_rgb2id_id2rgb_roundtrip():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, OFFSET, size=(7, 5))
    rgb = id2rgb(ids)
    assert rgb.dtype == np.uint8 and rgb.shape == (7, 5, 3)
    np.testing.assert_array_equal(rgb2id(rgb), ids)
    # the documented encoding: id = R + 256 G + 256^2 B
    assert rgb2id([1, 2, 3]) == 1 + 256 * 2 + 65536 * 3
    np.testing.assert_array_equal(id2rgb(1 + 256 * 2 + 65536 * 3), [1, 2, 3])


def test_id2rgb_rejects_out_of_range():
    with pytest.raises(ValueError, match='segment ids'):
        id2rgb(np.array([OFFSET]))
    with pytest.raises(ValueError, match='RGB'):
        rgb2id(np.zeros((2, 2, 4), np.uint8))
