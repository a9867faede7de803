"""Training-engine extensions: safe checkpoint loading and optimizer wrappers.

Importing this package allow-lists the globals of our checkpoints for
``torch.load(..., weights_only=True)`` and points mmengine's checkpoint loaders
at the safe ones (see :mod:`mmseg_maskformer.engine.checkpoint`).
"""
from .checkpoint import (UnsafeCheckpointError, load_checkpoint_safe, load_pickle_safe,
                         register_safe_globals, safe_globals)
from .optim_wrapper import AutocastOptimWrapper

register_safe_globals()

__all__ = [
    'AutocastOptimWrapper', 'UnsafeCheckpointError', 'load_checkpoint_safe', 'load_pickle_safe',
    'register_safe_globals', 'safe_globals'
]
