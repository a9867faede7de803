"""Fixtures shared by the whole suite."""
import pytest
from mmengine.registry import init_default_scope


@pytest.fixture(autouse=True)
def mmseg_maskformer_scope():
    """Build from our registry scope in every test, whatever a previous test set.

    mmengine keeps the current default scope in a process-wide variable; without
    this, a test that builds from ``mmseg_maskformer`` registries would depend on
    which test ran before it in the same worker.
    """
    init_default_scope('mmseg_maskformer')
    yield
