"""Shared fixtures of the dataset tests."""
import pytest

from mmseg_maskformer.datasets.synthetic import generate_synthetic_ade20k

SYNTHETIC_PARAMS = dict(num_train=3, num_val=6, img_size=64, seed=7)


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory) -> str:
    """A small synthetic ADE20K-layout dataset shared by the session."""
    root = str(tmp_path_factory.mktemp('synthetic_ade20k'))
    generate_synthetic_ade20k(root, **SYNTHETIC_PARAMS)
    return root
