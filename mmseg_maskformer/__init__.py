"""mmseg_maskformer: mask-classification segmentation (MaskFormer, Mask2Former).

Importing the package registers its models, datasets, transforms and engine
parts in the ``mmseg_maskformer`` registry scope.
"""
from .version import __version__

__all__ = ['__version__']


def _register_all() -> None:
    from . import datasets, engine, evaluation, models  # noqa: F401


_register_all()
