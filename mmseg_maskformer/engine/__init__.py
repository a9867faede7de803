"""Training-engine extensions: safe checkpoint loading, optimizer wrappers, checks,
atomic checkpoints, resumable random generators and per-sample augmentation seeds.

Importing this package allow-lists the globals of our checkpoints for
``torch.load(..., weights_only=True)`` and points mmengine's checkpoint loaders
at the safe ones (see :mod:`mmseg_maskformer.engine.checkpoint`).
"""
from .checkpoint import (UnsafeCheckpointError, load_checkpoint_safe, load_pickle_safe,
                         register_safe_globals, safe_globals)
from .checkpoint_hook import AtomicCheckpointHook
from .hooks import DistLossLogHook, NumClassesCheckHook, RNGStateHook, check_num_classes
from .optim_wrapper import AutocastOptimWrapper
from .rng_state import get_rng_state, sample_seed, seeded_rng, set_rng_state
from .sampler import SeededIndex, SeededInfiniteSampler, SeededPipeline

register_safe_globals()

__all__ = [
    'AutocastOptimWrapper', 'NumClassesCheckHook', 'check_num_classes', 'UnsafeCheckpointError',
    'load_checkpoint_safe', 'load_pickle_safe', 'register_safe_globals', 'safe_globals',
    'AtomicCheckpointHook', 'RNGStateHook', 'DistLossLogHook', 'get_rng_state',
    'set_rng_state', 'seeded_rng', 'sample_seed', 'SeededIndex', 'SeededInfiniteSampler',
    'SeededPipeline'
]
