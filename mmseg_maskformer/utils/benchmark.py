"""Measurement core of ``tools/analysis_tools/benchmark.py``.

Small functions with no knowledge of the command line: time a callable
(:func:`time_fn`), measure the peak memory of one call
(:func:`measure_peak_memory`), make a synthetic batch with targets
(:func:`synthetic_batch`) and wrap a model's inference and training step as
callables (:func:`inference_step`, :func:`train_step`).
"""
import contextlib
import ctypes
import gc
import os
import resource
import statistics
import threading
import time
from dataclasses import asdict, dataclass
from typing import Callable, ContextManager, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.structures import InstanceData, PixelData
from mmseg.structures import SegDataSample
from torch import Tensor, nn

#: ``--amp`` choices and the autocast dtypes they stand for.
AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


@dataclass
class Stats:
    """Wall-clock times of repeated calls, in seconds.

    Attributes:
        times: Every timed call, in order.
        median: Their median.
        min: The fastest.
        mean: The mean.
    """

    times: List[float]
    median: float
    min: float
    mean: float

    @classmethod
    def from_times(cls, times: Sequence[float]) -> 'Stats':
        """Summarises ``times`` (at least one)."""
        if not times:
            raise ValueError('no times to summarise')
        times = [float(t) for t in times]
        return cls(times, statistics.median(times), min(times), statistics.fmean(times))

    def to_dict(self) -> Dict[str, object]:
        return asdict(self)


def synchronizer(device: str) -> Callable[[], None]:
    """A function that waits for ``device``'s queued work (a no-op on CPU)."""
    if str(device).startswith('cuda'):
        return torch.cuda.synchronize
    return lambda: None


def time_fn(fn: Callable[[], object], warmup: int = 2, repeats: int = 5,
            sync: Callable[[], None] = lambda: None,
            clock: Callable[[], float] = time.perf_counter) -> Stats:
    """Times ``repeats`` calls of ``fn`` after ``warmup`` untimed ones.

    Args:
        fn: The work to time (no arguments).
        warmup: Untimed calls first (allocator, cuDNN autotuning, lazy init).
        repeats: Timed calls (at least 1).
        sync: Called before reading the clock, so that asynchronous device
            work is counted (``torch.cuda.synchronize`` on GPU).
        clock: Monotonic clock in seconds.

    Returns:
        The per-call times.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f'need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}')
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        sync()
        times.append(clock() - start)
    return Stats.from_times(times)


def _rss_bytes() -> int:
    """Current resident set size of this process (Linux ``/proc``; else peak RSS)."""
    try:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    except (OSError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


@contextlib.contextmanager
def _rss_sampler(interval: float, peak: List[int]):
    """Samples the RSS every ``interval`` seconds into ``peak[0]`` (its maximum)."""
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(interval):
            peak[0] = max(peak[0], _rss_bytes())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        peak[0] = max(peak[0], _rss_bytes())


M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc mallopt parameters


def keep_freed_heap() -> bool:
    """Make glibc's malloc keep freed memory for reuse (process-wide, from now on).

    By default glibc maps every block above its mmap threshold (at most 32 MiB)
    fresh from the system and unmaps it when freed, so each large tensor pays a
    page fault per 4 KiB page when first written; on a virtual machine that can
    be a third of a CPU step. With ``M_MMAP_MAX = 0`` and an unreachable
    ``M_TRIM_THRESHOLD`` large blocks come from the heap and stay there, as
    jemalloc / tcmalloc behave. ``malloc_trim`` (used by
    :func:`measure_peak_memory`) still returns free pages.

    Returns:
        bool: whether both settings were accepted (False where libc is not glibc).
    """
    try:
        mallopt = ctypes.CDLL('libc.so.6').mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))


def _release_free_heap() -> None:
    """Return freed heap pages to the system (glibc only; a no-op elsewhere)."""
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass


def measure_peak_memory(fn: Callable[[], object], device: str = 'cpu',
                        interval: float = 0.002) -> float:
    """Peak memory that one call of ``fn`` adds, in MiB.

    CUDA: ``torch.cuda.max_memory_allocated`` (tensors only) above the memory
    allocated before the call. CPU: the peak resident set size sampled every
    ``interval`` seconds by a thread, above the RSS before the call. Freed
    heap memory is first returned to the system (glibc ``malloc_trim``), so
    what earlier calls or another model left in the allocator neither hides
    nor inflates this call's peak. Kept apart from :func:`time_fn`: the
    sampling thread would slow the timed calls.
    """
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    gc.collect()
    _release_free_heap()
    before = _rss_bytes()
    peak = [before]
    with _rss_sampler(interval, peak):
        fn()
    return (peak[0] - before) / 2**20


def _random_regions(shape: Tuple[int, int], num_regions: int, num_classes: int,
                    rng: np.random.Generator) -> np.ndarray:
    """A (H, W) label map: a random background class, then rectangles painted over it."""
    h, w = shape
    seg = np.full((h, w), rng.integers(num_classes), dtype=np.int64)
    for _ in range(max(num_regions - 1, 0)):
        y0, x0 = rng.integers(0, h // 2 + 1), rng.integers(0, w // 2 + 1)
        y1, x1 = y0 + rng.integers(h // 4 + 1, h + 1), x0 + rng.integers(w // 4 + 1, w + 1)
        seg[y0:y1, x0:x1] = rng.integers(num_classes)
    return seg


def synthetic_batch(batch_size: int, shape: Tuple[int, int], num_classes: int,
                    num_regions: int = 5, seed: int = 0,
                    device: str = 'cpu') -> Tuple[Tensor, List[SegDataSample]]:
    """A preprocessed batch with targets in the format our loss expects.

    Args:
        batch_size: B.
        shape: ``(H, W)`` of every image (no padding).
        num_classes: Labels are drawn from ``[0, num_classes)``.
        num_regions: Rectangles per image (fewer segments when labels repeat).
        seed: Random seed.
        device: Device of the tensors.

    Returns:
        Normalised images (B, 3, H, W) float32 and one ``SegDataSample`` per
        image with ``gt_sem_seg`` (``data`` (1, H, W) int64), ``gt_instances``
        (one segment per label present: ``labels`` (N,) int64, ``masks`` bool
        (N, H, W), as ``PackMaskFormerInputs`` writes them) and metainfo
        ``img_shape = ori_shape = pad_shape = batch_input_shape = (H, W)``.
    """
    rng = np.random.default_rng(seed)
    inputs = torch.from_numpy(rng.standard_normal((batch_size, 3, *shape),
                                                  dtype=np.float32)).to(device)
    samples = []
    for _ in range(batch_size):
        seg = torch.from_numpy(_random_regions(shape, num_regions, num_classes, rng))
        labels = torch.unique(seg)
        sample = SegDataSample(metainfo=dict(img_shape=tuple(shape), ori_shape=tuple(shape),
                                             pad_shape=tuple(shape),
                                             batch_input_shape=tuple(shape),
                                             scale_factor=(1.0, 1.0)))
        sample.gt_sem_seg = PixelData(data=seg[None].to(device))
        sample.gt_instances = InstanceData(labels=labels.to(device),
                                           masks=(seg[None] == labels[:, None, None]).to(device))
        samples.append(sample)
    return inputs, samples


def autocast(device: str, amp: Optional[str]) -> ContextManager:
    """``torch.autocast`` for ``amp`` ('bf16' / 'fp16'), or a null context."""
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=str(device).split(':')[0], dtype=AMP_DTYPES[amp])


def inference_step(model: nn.Module, inputs: Tensor, samples: Sequence[object],
                   amp: Optional[str] = None) -> Callable[[], object]:
    """One ``predict`` call (forward + post-processing) without gradients.

    The model is put in eval mode.
    """
    device = str(inputs.device)
    model.eval()

    def step() -> object:
        with torch.no_grad(), autocast(device, amp):
            return model(inputs, list(samples), mode='predict')

    return step


def train_step(model: nn.Module, inputs: Tensor, samples: Sequence[object],
               amp: Optional[str] = None, lr: float = 1e-4) -> Callable[[], Tensor]:
    """One training step: forward + loss, backward, AdamW step (the recipe's optimiser).

    fp16 autocast uses a gradient scaler, as mmengine's ``AmpOptimWrapper``.
    The model is put in training mode.
    """
    device = str(inputs.device)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.05)
    scaler = torch.amp.GradScaler(device.split(':')[0], enabled=amp == 'fp16')

    def step() -> Tensor:
        with autocast(device, amp):
            losses = model(inputs, list(samples), mode='loss')
        loss, _ = model.parse_losses(losses)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    return step
