"""Compiled CPU kernel of the multi-scale deformable attention (forward and backward).

``csrc/ms_deform_attn_cpu.c`` is plain C (no PyTorch headers): it is compiled on
first use with the system C compiler (``$CC``, else ``cc``) into a shared library
cached under ``$MMSEG_MASKFORMER_CACHE`` (default ``~/.cache/mmseg_maskformer``),
keyed by the source, the flags, the compiler and the CPU, and called through
``ctypes`` on the tensors' memory, split between ``torch.get_num_threads()``
threads. It is built with ``-fopenmp`` where the compiler can: its OpenMP runtime
is then the one PyTorch has loaded (``libgomp.so.1``), and the work runs on
PyTorch's own intra-op threads. Python threads would compete with them: after a
matrix product PyTorch's OpenMP workers keep spinning for a while, and a kernel
split between two Python threads on two cores ran at the speed of one (12.0 ms
against 8.9 ms with passive OpenMP workers, one encoder layer at 512 x 512).
Without OpenMP (or when that library does not load) the kernel is built without
it, and ``ctypes``, which releases the GIL, runs the ranges on Python threads.

The entry points are PyTorch operators (``torch.library.custom_op``:
``mmseg_maskformer::ms_deform_attn_cpu_forward``, ``..._backward`` and
``..._from_projections``) with shape-only fake implementations and the forward's
autograd formula, so ``torch.compile`` and other tracers treat them as opaque
ops; a tracer never runs the kernel on a fake tensor's memory.

When no compiler is available, the build fails, or
``MMSEG_MASKFORMER_CPU_KERNEL=0`` is set, :func:`kernel_available` is False and
the callers use the pure-PyTorch implementations (same results, slower); the
reason is logged once.
"""
import ctypes
import hashlib
import logging
import os
import platform
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.logging import print_log
from torch import Tensor

_SOURCE_DIR = Path(__file__).parent / 'csrc'
_SOURCES = ('ms_deform_attn_cpu.c', 'ms_deform_attn_cpu_impl.h')
_FLAGS = ['-O3', '-march=native', '-fopenmp-simd', '-fPIC', '-shared']
_OPENMP_FLAGS = ['-fopenmp']
_KERNELS = {'msda_forward': 6, 'msda_forward_proj': 6, 'msda_backward': 9}  # pointers
_DTYPES = {torch.float32: 'f32', torch.float64: 'f64'}
_lock = threading.Lock()
_library: Optional[ctypes.CDLL] = None
_failure: Optional[str] = None
_openmp = False
_pool: Optional[ThreadPoolExecutor] = None
_pool_size = 0


def _cache_dir() -> Path:
    root = os.environ.get('MMSEG_MASKFORMER_CACHE')
    return Path(root) if root else Path.home() / '.cache' / 'mmseg_maskformer'


def _cpu_signature() -> str:
    """The CPU model and flags (``-march=native`` code runs only on such a CPU)."""
    try:
        lines = Path('/proc/cpuinfo').read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    wanted = ('model name', 'flags')
    return '\n'.join(sorted({line for line in lines if line.startswith(wanted)}))


def _build(compiler: str, openmp: bool = False) -> Path:
    """Compile the kernel (or find it in the cache) and return the library's path."""
    flags = _FLAGS + (_OPENMP_FLAGS if openmp else [])
    version = subprocess.run([compiler, '--version'], capture_output=True, text=True,
                             check=True).stdout
    digest = hashlib.sha256()
    for name in _SOURCES:
        digest.update((_SOURCE_DIR / name).read_bytes())
    for part in (' '.join(flags), version, _cpu_signature()):
        digest.update(part.encode())
    target = _cache_dir() / f'ms_deform_attn_cpu_{digest.hexdigest()[:16]}.so'
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # build beside the target, then rename: concurrent processes never load a partial file
    fd, tmp = tempfile.mkstemp(suffix='.so', dir=target.parent)
    os.close(fd)
    try:
        result = subprocess.run(
            [compiler, *flags, str(_SOURCE_DIR / _SOURCES[0]), '-o', tmp, '-lm'],
            capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f'{compiler} failed: {result.stderr.strip()[-2000:]}')
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target


def _open(path: Path) -> ctypes.CDLL:
    """Load the library and declare its entry points."""
    library = ctypes.CDLL(str(path))
    for suffix in _DTYPES.values():
        for name, pointers in _KERNELS.items():
            # the ranged kernel takes (begin, end), its _omp twin (total, threads)
            for entry in (f'{name}_{suffix}', f'{name}_omp_{suffix}'):
                function = getattr(library, entry)
                function.argtypes = [ctypes.c_void_p] * pointers + [ctypes.c_int64] * 8
                function.restype = None
    library.msda_openmp.argtypes = []
    library.msda_openmp.restype = ctypes.c_int
    return library


def _load() -> Optional[ctypes.CDLL]:
    global _library, _failure, _openmp
    with _lock:
        if _library is not None or _failure is not None:
            return _library
        if os.environ.get('MMSEG_MASKFORMER_CPU_KERNEL', '1') == '0':
            _failure = 'disabled by MMSEG_MASKFORMER_CPU_KERNEL=0'
            return None
        compiler = os.environ.get('CC', 'cc')
        errors = (OSError, RuntimeError, subprocess.SubprocessError, AttributeError)
        try:
            library = _open(_build(compiler, openmp=True))
        except errors as err:  # no OpenMP in this compiler or its runtime: build without
            print_log(f'The deformable-attention CPU kernel is built without OpenMP ({err}).',
                      logger='current', level=logging.DEBUG)
            library = None
        try:
            if library is None:
                library = _open(_build(compiler))
            _library, _openmp = library, bool(library.msda_openmp())
        except errors as err:
            _failure = str(err)
            print_log('The compiled CPU kernel of the deformable attention is not available '
                      f'({_failure}); the pure-PyTorch implementation is used.',
                      logger='current')
        return _library


@torch.compiler.assume_constant_result  # torch.compile: asked once, while tracing
def kernel_available() -> bool:
    """Whether the compiled CPU kernel can be used (compiling it on first call)."""
    return _load() is not None


def kernel_failure() -> Optional[str]:
    """Why the kernel is not available, or None."""
    _load()
    return _failure


def _run_split(name: str, dtype: torch.dtype, args: Sequence[int], total: int) -> None:
    """Run kernel ``name`` over ``[0, total)`` split between the intra-op threads.

    Args:
        name: Kernel, a key of ``_KERNELS``.
        dtype: Its scalar type, a key of ``_DTYPES``.
        args: Its arguments before the range (pointers, then sizes).
        total: Number of work items.
    """
    global _pool, _pool_size
    threads = max(1, min(torch.get_num_threads(), total))
    if _openmp or threads == 1:
        getattr(_library, f'{name}_omp_{_DTYPES[dtype]}')(*args, total, threads)
        return
    kernel = getattr(_library, f'{name}_{_DTYPES[dtype]}')
    with _lock:
        if _pool is None or _pool_size < threads:
            _pool = ThreadPoolExecutor(max_workers=threads,
                                       thread_name_prefix='ms_deform_attn_cpu')
            _pool_size = threads
        pool = _pool
    bounds = [total * i // threads for i in range(threads + 1)]
    futures = [pool.submit(kernel, *args, bounds[i], bounds[i + 1]) for i in range(threads)]
    for future in futures:
        future.result()


def _shapes_and_starts(spatial_shapes: Tensor) -> Tuple[Tensor, Tensor]:
    """The (L, 2) level sizes and the (L,) level starts in S, int64 on CPU."""
    shapes = spatial_shapes.to('cpu', torch.int64).contiguous()
    sizes = shapes[:, 0] * shapes[:, 1]
    return shapes, torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]])


def _prepare(value: Tensor, spatial_shapes: Tensor, locations: Tensor,
             weights: Tensor) -> Tuple[List[Tensor], Tuple[int, ...]]:
    value, locations, weights = (t.contiguous() for t in (value, locations, weights))
    shapes, starts = _shapes_and_starts(spatial_shapes)
    b, s, m, d = value.shape
    _, q, _, num_levels, num_points, _ = locations.shape
    return [value, shapes, starts, locations, weights], (b, s, m, d, q, num_levels, num_points)


@torch.library.custom_op('mmseg_maskformer::ms_deform_attn_cpu_forward', mutates_args=(),
                         device_types='cpu')
def _forward_op(value: Tensor, spatial_shapes: Tensor, sampling_locations: Tensor,
                attention_weights: Tensor) -> Tensor:
    """The kernel's forward: (B, S, M, D) values -> (B, Q, M * D)."""
    tensors, dims = _prepare(value, spatial_shapes, sampling_locations, attention_weights)
    b, s, m, d, q, num_levels, num_points = dims
    out = value.new_empty(b, q, m * d)
    ptrs = [t.data_ptr() for t in tensors] + [out.data_ptr()]
    _run_split('msda_forward', value.dtype, [*ptrs, s, m, d, q, num_levels, num_points], b * q)
    return out


@_forward_op.register_fake
def _forward_fake(value: Tensor, spatial_shapes: Tensor, sampling_locations: Tensor,
                  attention_weights: Tensor) -> Tensor:
    b, _, m, d = value.shape
    return value.new_empty(b, sampling_locations.shape[1], m * d)


@torch.library.custom_op('mmseg_maskformer::ms_deform_attn_cpu_backward', mutates_args=(),
                         device_types='cpu')
def _backward_op(value: Tensor, spatial_shapes: Tensor, sampling_locations: Tensor,
                 attention_weights: Tensor, grad_out: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """The kernel's backward: gradients of the value, locations and weights."""
    tensors, dims = _prepare(value, spatial_shapes, sampling_locations, attention_weights)
    value, shapes, starts, locations, weights = tensors
    b, s, m, d, q, num_levels, num_points = dims
    grad_out = grad_out.contiguous()
    value = value.transpose(1, 2).contiguous()  # head-major, as the backward reads it
    grad_value = torch.zeros_like(value)
    grad_locations = torch.zeros_like(locations)
    grad_weights = torch.zeros_like(weights)
    ptrs = [t.data_ptr() for t in (value, shapes, starts, locations, weights, grad_out,
                                   grad_value, grad_locations, grad_weights)]
    _run_split('msda_backward', value.dtype, [*ptrs, s, m, d, q, num_levels, num_points], b * m)
    return grad_value.transpose(1, 2), grad_locations, grad_weights


@_backward_op.register_fake
def _backward_fake(value: Tensor, spatial_shapes: Tensor, sampling_locations: Tensor,
                   attention_weights: Tensor, grad_out: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    b, s, m, d = value.shape
    return (value.new_empty(b, m, s, d).transpose(1, 2),
            sampling_locations.new_empty(sampling_locations.shape),
            attention_weights.new_empty(attention_weights.shape))


def _setup_backward(ctx, inputs: Tuple[Tensor, ...], output: Tensor) -> None:
    ctx.save_for_backward(*inputs)


def _forward_backward(ctx, grad_out: Tensor) -> Tuple[Optional[Tensor], ...]:
    value, spatial_shapes, locations, weights = ctx.saved_tensors
    grad_value, grad_locations, grad_weights = _backward_op(value, spatial_shapes, locations,
                                                            weights, grad_out)
    return grad_value, None, grad_locations, grad_weights


_forward_op.register_autograd(_forward_backward, setup_context=_setup_backward)


def ms_deform_attn_cpu(value: Tensor, spatial_shapes: Tensor, sampling_locations: Tensor,
                       attention_weights: Tensor) -> Tensor:
    """Compiled multi-scale deformable attention; arguments and result as
    :func:`~mmseg_maskformer.models.layers.ms_deform_attn.ms_deform_attn_core`.

    Args:
        value: Shape (B, S, M, D).
        spatial_shapes: Shape (L, 2), int64.
        sampling_locations: Shape (B, Q, M, L, P, 2).
        attention_weights: Shape (B, Q, M, L, P).

    Returns:
        Shape (B, Q, M * D).

    Raises:
        RuntimeError: When the kernel is not available (see :func:`kernel_failure`).
    """
    if not kernel_available():
        raise RuntimeError(f'the compiled CPU kernel is not available: {_failure}')
    return _forward_op(value, spatial_shapes, sampling_locations, attention_weights)


def ms_deform_attn_cpu_from_projections(value: Tensor, spatial_shapes: Tensor,
                                        reference_points: Tensor, projections: Tensor,
                                        num_heads: int, num_points: int) -> Tensor:
    """Compiled deformable attention from the raw projections, without gradients.

    The same result as normalising the offsets (:func:`normalise_offsets`), adding
    the reference points, taking the softmax of each head's L * P logits and
    calling :func:`ms_deform_attn_cpu`, but the locations and weights are formed
    inside the kernel per query and head, with no (B, Q, M, L, P) tensors.

    Args:
        value: Shape (B, S, M, D), float32 or float64.
        spatial_shapes: Shape (L, 2), int64.
        reference_points: Normalised ``(x, y)``, shape (B, Q, L, 2).
        projections: Per query the sampling offsets in pixels, ordered (head,
            level, point, xy), then the attention logits, ordered (head, level *
            point): shape (B, Q, M * L * P * 3).
        num_heads: M.
        num_points: P.

    Returns:
        Shape (B, Q, M * D).

    Raises:
        RuntimeError: When the kernel is not available, or a tensor requires grad.
        ValueError: On inconsistent shapes or an unsupported dtype.
    """
    if not kernel_available():
        raise RuntimeError(f'the compiled CPU kernel is not available: {_failure}')
    if torch.is_grad_enabled() and any(t.requires_grad for t in (value, reference_points,
                                                                   projections)):
        raise RuntimeError('ms_deform_attn_cpu_from_projections has no backward')
    if value.dtype not in _DTYPES or {reference_points.dtype, projections.dtype} != {
            value.dtype}:
        raise ValueError('value, reference_points and projections must share a float32 or '
                         f'float64 dtype, got {value.dtype}, {reference_points.dtype}, '
                         f'{projections.dtype}')
    b, s, m, d = value.shape
    num_levels = spatial_shapes.shape[0]
    q = reference_points.shape[1]
    if (m != num_heads or tuple(reference_points.shape) != (b, q, num_levels, 2) or
            tuple(projections.shape) != (b, q, m * num_levels * num_points * 3)):
        raise ValueError(f'inconsistent shapes: value {tuple(value.shape)}, reference points '
                         f'{tuple(reference_points.shape)}, projections '
                         f'{tuple(projections.shape)} for {num_heads} heads, {num_levels} '
                         f'levels, {num_points} points')
    return _from_projections_op(value, spatial_shapes, reference_points, projections,
                                num_points)


@torch.library.custom_op('mmseg_maskformer::ms_deform_attn_cpu_from_projections',
                         mutates_args=(), device_types='cpu')
def _from_projections_op(value: Tensor, spatial_shapes: Tensor, reference_points: Tensor,
                         projections: Tensor, num_points: int) -> Tensor:
    """The inference kernel on checked inputs: (B, S, M, D) values -> (B, Q, M * D)."""
    b, s, m, d = value.shape
    num_levels, q = spatial_shapes.shape[0], reference_points.shape[1]
    value, reference_points, projections = (t.contiguous() for t in (value, reference_points,
                                                                    projections))
    shapes, starts = _shapes_and_starts(spatial_shapes)
    out = value.new_empty(b, q, m * d)
    ptrs = [t.data_ptr() for t in (value, shapes, starts, reference_points, projections, out)]
    _run_split('msda_forward_proj', value.dtype,
               [*ptrs, s, m, d, q, num_levels, num_points], b * q)
    return out


@_from_projections_op.register_fake
def _from_projections_fake(value: Tensor, spatial_shapes: Tensor, reference_points: Tensor,
                           projections: Tensor, num_points: int) -> Tensor:
    b, _, m, d = value.shape
    return value.new_empty(b, reference_points.shape[1], m * d)
