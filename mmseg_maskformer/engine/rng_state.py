"""Random-number-generator states as checkpoint-safe values.

A training step draws random numbers from three generators: Python's
``random``, numpy's global ``RandomState`` and torch's default generators
(CPU and, when used, CUDA). mmengine seeds them once at start-up but does not
save them in checkpoints, so a resumed run draws different numbers (point
sampling in the losses, dropout) than an uninterrupted one.

:func:`get_rng_state` captures all of them as tensors, lists, ints and floats
only, which ``torch.load(..., weights_only=True)`` rebuilds without any
allow-listed global; :func:`set_rng_state` puts them back.
:func:`seeded_rng` runs a block under a given seed and restores the previous
states afterwards (used to give every training sample its own augmentation
seed, see :mod:`mmseg_maskformer.engine.sampler`).

Example:
    >>> state = get_rng_state()
    >>> a = torch.rand(2)
    >>> set_rng_state(state)
    >>> torch.equal(a, torch.rand(2))
    True
"""
import contextlib
import random
from typing import Any, Dict, Iterator, Sequence

import numpy as np
import torch

__all__ = ['GENERATORS', 'get_rng_state', 'set_rng_state', 'seeded_rng', 'sample_seed']

RNGState = Dict[str, Any]
#: Every generator that :func:`get_rng_state` captures.
GENERATORS = ('python', 'numpy', 'torch', 'cuda')


def get_rng_state() -> RNGState:
    """Captures the Python, numpy, torch CPU and CUDA generator states.

    Returns:
        dict with keys ``python`` (version, 625 ints, ``gauss_next``),
        ``numpy`` (the 624 Mersenne-Twister keys as an int64 tensor, ``pos``,
        ``has_gauss``, ``cached_gaussian``), ``torch`` (uint8 tensor) and, if
        CUDA is initialised, ``cuda`` (one uint8 tensor per device).
    """
    py_version, py_state, py_gauss = random.getstate()
    _, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: RNGState = dict(
        python=dict(version=int(py_version), state=[int(v) for v in py_state],
                    gauss_next=py_gauss),
        numpy=dict(keys=torch.from_numpy(np_keys.astype(np.int64)), pos=int(np_pos),
                   has_gauss=int(np_has_gauss), cached_gaussian=float(np_gauss)),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: RNGState, generators: Sequence[str] = GENERATORS) -> None:
    """Restores generator states captured by :func:`get_rng_state`.

    Tensors may come back on another device (a checkpoint loaded with
    ``map_location='cuda'``); they are moved to the CPU first. CUDA states are
    restored only when CUDA is available.

    Args:
        state: The dict returned by :func:`get_rng_state`.
        generators: Which of ``'python'``, ``'numpy'``, ``'torch'`` and
            ``'cuda'`` to restore (default: all).
    """
    if 'python' in generators:
        py = state['python']
        random.setstate((py['version'], tuple(py['state']), py['gauss_next']))
    if 'numpy' in generators:
        npy = state['numpy']
        keys = torch.as_tensor(npy['keys']).cpu().numpy().astype(np.uint32)
        np.random.set_state(('MT19937', keys, int(npy['pos']), int(npy['has_gauss']),
                             float(npy['cached_gaussian'])))
    if 'torch' in generators:
        torch.set_rng_state(torch.as_tensor(state['torch']).cpu())
    if 'cuda' in generators and 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state['cuda']])


def sample_seed(seed: int, position: int) -> int:
    """A well-mixed 32-bit seed for the sample at ``position`` of a seeded stream.

    Args:
        seed: Seed of the stream (the sampler's seed), ``>= 0``.
        position: Position of the sample in the stream, ``>= 0``.

    Returns:
        int in ``[0, 2**32)``, the same for the same arguments on every
        process and platform.
    """
    return int(np.random.SeedSequence([int(seed), int(position)]).generate_state(1)[0])


@contextlib.contextmanager
def seeded_rng(seed: int) -> Iterator[None]:
    """Runs the block with Python, numpy and torch (CPU) seeded by ``seed``.

    The previous states are restored on exit, so the block neither depends on
    nor changes the random numbers drawn outside it. CUDA generators are left
    alone (data transforms run on the CPU).

    Args:
        seed: Seed in ``[0, 2**32)``.
    """
    py_state = random.getstate()
    np_state = np.random.get_state()
    torch_state = torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed)
    torch.default_generator.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)
