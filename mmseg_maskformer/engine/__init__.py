"""Training-engine extensions: safe checkpoint loading, optimizer wrappers, checks.

Importing this package allow-lists the globals of our checkpoints for
``torch.load(..., weights_only=True)`` and points mmengine's checkpoint loaders
at the safe ones (see :mod:`mmseg_maskformer.engine.checkpoint`).
"""
from .checkpoint import (UnsafeCheckpointError, load_checkpoint_safe, load_pickle_safe,
                         register_safe_globals, safe_globals)
from .hooks import NumClassesCheckHook, check_num_classes
from .optim_wrapper import AutocastOptimWrapper

register_safe_globals()

__all__ = [
    'AutocastOptimWrapper', 'NumClassesCheckHook', 'check_num_classes', 'UnsafeCheckpointError',
    'load_checkpoint_safe', 'load_pickle_safe', 'register_safe_globals', 'safe_globals'
]
