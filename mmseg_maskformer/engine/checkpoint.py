"""Safe loading of checkpoints and pickled weights.

Since torch 2.6, ``torch.load`` unpickles with ``weights_only=True`` by
default: only tensors, primitive containers and globals on an allow-list are
rebuilt. mmengine checkpoints also hold numpy values and mmengine objects (the
message hub keeps ``HistoryBuffer`` objects of numpy arrays), so resuming or
loading them fails unless those globals are allow-listed. This module

* names the exact globals our checkpoints hold (:func:`safe_globals`) and
  allow-lists them for every ``weights_only`` load in the process
  (:func:`register_safe_globals`);
* registers a loader for every scheme of mmengine's ``CheckpointLoader``
  (local files, http(s), ``torchvision://``, ``open-mmlab://``, ``mmcls://``,
  s3/petrel, pavi) that loads with ``weights_only=True`` explicitly; mmengine's
  own http loader would unpickle without restrictions;
* loads Detectron2-style ``.pkl`` files (dicts of numpy arrays) with a
  restricted unpickler (:func:`load_pickle_safe`).

Nothing here ever falls back to unrestricted unpickling: a file holding any
other global is refused with an :class:`UnsafeCheckpointError` that names the
file and the global.

Example:
    >>> from mmseg_maskformer.engine.checkpoint import load_checkpoint_safe
    >>> ckpt = load_checkpoint_safe('work_dirs/exp/iter_2000.pth')
"""
import _compat_pickle
import importlib
import io
import os
import os.path as osp
import pickle
import pickletools
import re
import zipfile
from collections import OrderedDict
from tempfile import TemporaryDirectory
from typing import Any, Callable, Dict, List, Optional, Tuple, Union
from urllib.parse import urlparse

import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.fileio import get_file_backend
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import (CheckpointLoader, _get_mmengine_home,
                                        _process_mmcls_checkpoint,
                                        get_deprecated_model_names, get_external_models,
                                        get_mmcls_models, get_torchvision_models)

__all__ = [
    'UnsafeCheckpointError', 'safe_globals', 'register_safe_globals', 'load_checkpoint_safe',
    'load_pickle_safe'
]

SafeGlobal = Tuple[Any, str]

# Statistic methods that ``HistoryBuffer.__getstate__`` stores by reference.
_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')
# Fixed-size numeric dtypes whose dtype classes may be rebuilt (see safe_globals).
_NUMERIC_DTYPES = ('bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32',
                   'uint64', 'float16', 'float32', 'float64')
_ALLOW_LIST_HINT = 'mmseg_maskformer.engine.checkpoint.safe_globals()'
_registered = False


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint or pickle holds a global that is not allow-listed."""


def _multiarray() -> Any:
    """Returns numpy's ``multiarray`` module (``numpy._core`` in numpy 2)."""
    try:
        return importlib.import_module('numpy._core.multiarray')
    except ImportError:  # numpy < 2
        return importlib.import_module('numpy.core.multiarray')


def _numeric() -> Any:
    """Returns numpy's ``numeric`` module (``numpy._core`` in numpy 2)."""
    try:
        return importlib.import_module('numpy._core.numeric')
    except ImportError:  # numpy < 2
        return importlib.import_module('numpy.core.numeric')


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """Stands in for ``builtins.getattr`` while unpickling a checkpoint.

    ``HistoryBuffer.__getstate__`` stores its statistic methods, and pickle
    writes a method ``HistoryBuffer.min`` as ``getattr(HistoryBuffer, 'min')``.
    A general ``getattr`` would open every attribute of every allowed object
    (function globals, builtins) to a crafted file, so only these four
    attributes of ``HistoryBuffer`` are served.

    Args:
        obj: The object whose attribute the pickle asks for.
        name: The attribute name.

    Returns:
        The statistic method ``HistoryBuffer.<name>``.

    Raises:
        pickle.UnpicklingError: For any other object or attribute.
    """
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'getattr({getattr(obj, "__qualname__", type(obj).__name__)}, {name!r}) is not '
        f'allowed: only HistoryBuffer.{{{",".join(_HISTORY_BUFFER_METHODS)}}} may be '
        'looked up by attribute')


def safe_globals() -> List[SafeGlobal]:
    """Returns the allow-list of globals that our checkpoints hold.

    Found by saving a checkpoint with mmengine's ``CheckpointHook`` after a
    short ``runner.train()`` and asking ``torch.load(..., weights_only=True)``
    what it refuses. torch itself already allows tensors, ``torch.Size``,
    ``collections.OrderedDict``, ``set``, ``bytearray`` and ``_codecs.encode``
    (bytes in protocol-2 pickles), so they are not repeated here.

    Returns:
        ``(object, name)`` pairs; ``name`` is the dotted name under which the
        pickle refers to the object (``add_safe_globals`` accepts these pairs,
        which lets checkpoints written with numpy 1.x map onto numpy 2).
    """
    multiarray = _multiarray()
    allowed: List[SafeGlobal] = [
        # message_hub.log_scalars: the training curves (lr, loss, time) that
        # resume restores are HistoryBuffer objects.
        (HistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
        # HistoryBuffer.__getstate__ stores its statistic methods, pickled as
        # getattr(HistoryBuffer, 'min'); served by a getattr restricted to
        # exactly those four attributes.
        (_history_buffer_getattr, 'builtins.getattr'),
        # HistoryBuffer histories are numpy arrays: pickle rebuilds an array
        # with _reconstruct(ndarray, shape, dtype) and then sets its raw data.
        (np.ndarray, 'numpy.ndarray'),
        (np.dtype, 'numpy.dtype'),
        # numpy scalars (the message hub's 'eta', metric values, dataset
        # metainfo entries) are pickled as scalar(dtype, raw_bytes).
        (multiarray.scalar, 'numpy.core.multiarray.scalar'),
        (multiarray.scalar, 'numpy._core.multiarray.scalar'),
        (multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
        (multiarray._reconstruct, 'numpy._core.multiarray._reconstruct'),
    ]
    # torch restores the state of a rebuilt numpy dtype (its byte order) only
    # if the dtype's class is allowed; which dtype a checkpoint holds depends on
    # the logged values (float64 and int64 in the histories), so the classes of
    # all fixed-size numeric dtypes are allowed. They carry no behaviour.
    for name in _NUMERIC_DTYPES:
        dtype_cls = type(np.dtype(name))
        allowed.append((dtype_cls, f'{dtype_cls.__module__}.{dtype_cls.__qualname__}'))
    return allowed


def _register_schemes() -> None:
    """Points every ``CheckpointLoader`` scheme of mmengine at a safe loader."""
    schemes: Dict[Union[str, Tuple[str, ...]], Callable] = {
        '': load_from_local,
        ('http://', 'https://'): load_from_http,
        ('modelzoo://', 'torchvision://'): load_from_torchvision,
        ('open-mmlab://', 'openmmlab://'): load_from_openmmlab,
        'mmcls://': load_from_mmcls,
        (r'(\S+\:)?s3://', r'(\S+\:)?petrel://'): load_from_ceph,
        'pavi://': load_from_pavi,
    }
    for prefixes, loader in schemes.items():
        CheckpointLoader.register_scheme(prefixes=prefixes, loader=loader, force=True)


def register_safe_globals() -> None:
    """Allow-lists :func:`safe_globals` and registers the safe loaders.

    After this call every checkpoint load in the process, including those
    inside mmengine (``runner.resume``, ``load_from``, ``init_cfg`` of type
    ``Pretrained``), unpickles with ``weights_only=True`` and our allow-list.
    Calling it again does nothing.
    """
    global _registered
    if _registered:
        return
    torch.serialization.add_safe_globals(safe_globals())
    _register_schemes()
    _registered = True


def _python3_name(module: str, name: str) -> str:
    """Dotted Python 3 name of a global that a protocol-2 pickle names the Python 2 way."""
    module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
    return f'{_compat_pickle.IMPORT_MAPPING.get(module, module)}.{name}'


def _globals_in_pickle(filename: str) -> List[str]:
    """Lists the globals the first pickle in a file refers to, without loading it.

    Walks the opcodes with :func:`pickletools.genops` (nothing is imported or
    called). ``STACK_GLOBAL`` takes its module and name from the two strings
    pushed before it, which are followed through the memo.
    """
    found: List[str] = []
    strings: List[Any] = []
    memo: Dict[Any, Any] = {}
    with open(filename, 'rb') as file:
        for opcode, arg, _ in pickletools.genops(file):
            if opcode.name == 'GLOBAL':
                found.append(_python3_name(*arg.split(' ', 1)))
            elif opcode.name == 'STACK_GLOBAL' and len(strings) >= 2:
                found.append(f'{strings[-2]}.{strings[-1]}')
            elif isinstance(arg, str) and 'UNICODE' in opcode.name:
                strings.append(arg)
            elif opcode.name == 'MEMOIZE' and strings:
                memo[len(memo)] = strings[-1]
            elif opcode.name in ('PUT', 'BINPUT', 'LONG_BINPUT') and strings:
                memo[arg] = strings[-1]
            elif opcode.name in ('GET', 'BINGET', 'LONG_BINGET') and arg in memo:
                strings.append(memo[arg])
    return found


def _refused_global(filename: str, message: str) -> str:
    """Names what a refused file holds, from the file itself or torch's error."""
    if zipfile.is_zipfile(filename):
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
    else:
        try:
            allowed = {name for _, name in safe_globals()}
            unsafe = [name for name in _globals_in_pickle(filename) if name not in allowed]
        except Exception:  # not a readable pickle: fall back on torch's message
            unsafe = []
    if unsafe:
        return ', '.join(sorted(set(unsafe)))
    match = re.search(r'GLOBAL (\S+)', message)
    if match:
        return match.group(1)
    reason = message.split('WeightsUnpickler error:')[-1].strip().splitlines()[0]
    return f'an object that cannot be rebuilt safely ({reason})'


def _refusal(filename: str, what: str) -> UnsafeCheckpointError:
    """Builds the error raised for a file that holds a global not allowed."""
    if filename.endswith('.pkl'):
        convert = ("numpy arrays, e.g. pickle.dump({'model': {k: np.asarray(v) for k, v in "
                   "pickle.load(open(src, 'rb'), encoding='latin1')['model'].items()}}, "
                   "open(dst, 'wb'))")
    else:
        convert = ("tensors, e.g. torch.save(torch.load(src, weights_only=False)"
                   "['state_dict'], dst)")
    return UnsafeCheckpointError(
        f'refusing to load {filename}: it contains {what} which is not on the allow-list '
        f'of mmseg_maskformer checkpoints ({_ALLOW_LIST_HINT}). If you trust the file, '
        f'convert it in a separate process into a plain dict of {convert}, and load dst.')


def load_checkpoint_safe(filename: str, map_location: Any = 'cpu') -> Any:
    """Loads a checkpoint with ``weights_only=True`` and our allow-list.

    Files ending in ``.pkl`` that are not torch zip archives (Detectron2
    weights) go to :func:`load_pickle_safe`.

    Args:
        filename: Local path of the checkpoint.
        map_location: Same as for :func:`torch.load`.

    Returns:
        The unpickled checkpoint (usually a dict).

    Raises:
        FileNotFoundError: If the file does not exist.
        UnsafeCheckpointError: If the file holds a global not allow-listed.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} can not be found.')
    if filename.endswith('.pkl') and not zipfile.is_zipfile(filename):
        return load_pickle_safe(filename)
    register_safe_globals()
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise _refusal(filename, _refused_global(filename, str(error))) from None


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds only numpy arrays, numpy scalars and dicts."""

    def __init__(self, file: io.BufferedIOBase, filename: str) -> None:
        super().__init__(file, encoding='latin1')
        self._filename = filename
        multiarray = _multiarray()
        self._allowed: Dict[Tuple[str, str], Any] = {
            ('numpy', 'ndarray'): np.ndarray,
            ('numpy', 'dtype'): np.dtype,
            ('collections', 'OrderedDict'): OrderedDict,
            # Python 3 writes bytes into protocol-2 pickles as encode(str, 'latin1').
            ('_codecs', 'encode'): _codecs_encode,
        }
        for core in ('numpy.core', 'numpy._core'):
            self._allowed[(f'{core}.multiarray', '_reconstruct')] = multiarray._reconstruct
            self._allowed[(f'{core}.multiarray', 'scalar')] = multiarray.scalar
            # Arrays in protocol-5 pickles: frombuffer(raw bytes, dtype) reshaped.
            self._allowed[(f'{core}.numeric', '_frombuffer')] = _numeric()._frombuffer

    def find_class(self, module: str, name: str) -> Any:
        """Returns an allowed global, refuses every other one."""
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise _refusal(self._filename, f'{module}.{name}') from None

    def persistent_load(self, pid: Any) -> Any:
        """Refuses persistent ids (torch storages are not expected here)."""
        raise _refusal(self._filename, f'the persistent id {pid!r}')


def _codecs_encode(obj: str, encoding: str = 'utf-8') -> bytes:
    """``_codecs.encode`` limited to turning a str into bytes."""
    if not isinstance(obj, str) or encoding not in ('latin1', 'latin-1'):
        raise pickle.UnpicklingError('only latin1 encoding of a str is allowed')
    return obj.encode(encoding)


def load_pickle_safe(filename: str) -> Any:
    """Loads a plain pickle of numpy arrays (a Detectron2 ``.pkl``).

    Detectron2 checkpoints are dicts with numpy arrays under ``'model'``,
    written by Python 2 or 3; they are read with ``encoding='latin1'``. Only
    numpy arrays, dtypes and scalars and ``collections.OrderedDict`` are
    rebuilt; any other global is refused before it is imported or called.

    Args:
        filename: Local path of the pickle.

    Returns:
        The unpickled object.

    Raises:
        FileNotFoundError: If the file does not exist.
        UnsafeCheckpointError: If the file holds another global.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'pickle {filename} can not be found.')
    with open(filename, 'rb') as file:
        return NumpyOnlyUnpickler(file, filename).load()


# Loaders for mmengine's CheckpointLoader schemes. mmengine logs the scheme by
# stripping 'load_from_' from the function name, so the names follow its own.


def load_from_local(filename: str, map_location: Any = None) -> Any:
    """Scheme ``''``: a local file."""
    return load_checkpoint_safe(filename, map_location)


def _download(url: str, model_dir: Optional[str], progress: bool) -> str:
    """Downloads ``url`` once into the torch hub cache and returns the path."""
    if model_dir is None:
        model_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    cached_file = osp.join(model_dir, osp.basename(urlparse(url).path))
    if not osp.exists(cached_file):
        torch.hub.download_url_to_file(url, cached_file, progress=progress)
    return cached_file


def load_from_http(filename: str,
                   map_location: Any = None,
                   model_dir: Optional[str] = None,
                   progress: bool = os.isatty(0)) -> Any:
    """Schemes ``http://``, ``https://``: download (rank 0 first), then load."""
    rank, world_size = get_dist_info()
    if rank == 0:
        cached_file = _download(filename, model_dir, progress)
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            cached_file = _download(filename, model_dir, progress)
    return load_checkpoint_safe(cached_file, map_location)


def load_from_torchvision(filename: str, map_location: Any = None) -> Any:
    """Schemes ``torchvision://NAME``, ``modelzoo://NAME``."""
    model_name = filename.split('://', 1)[1]
    return load_from_http(get_torchvision_models()[model_name], map_location=map_location)


def load_from_openmmlab(filename: str, map_location: Any = None) -> Any:
    """Schemes ``open-mmlab://NAME``, ``openmmlab://NAME``."""
    model_name = filename.split('://', 1)[1]
    model_name = get_deprecated_model_names().get(model_name, model_name)
    model_url = get_external_models()[model_name]
    if model_url.startswith(('http://', 'https://')):
        return load_from_http(model_url, map_location=map_location)
    return load_checkpoint_safe(osp.join(_get_mmengine_home(), model_url), map_location)


def load_from_mmcls(filename: str, map_location: Any = None) -> Any:
    """Scheme ``mmcls://NAME``."""
    model_url = get_mmcls_models()[filename[len('mmcls://'):]]
    return _process_mmcls_checkpoint(load_from_http(model_url, map_location=map_location))


def load_from_ceph(filename: str, map_location: Any = None, backend: str = 'petrel') -> Any:
    """Schemes ``s3://``, ``petrel://``: read through mmengine's file backend."""
    file_backend = get_file_backend(filename, backend_args={'backend': backend})
    with TemporaryDirectory() as tmp_dir:
        local_file = osp.join(tmp_dir, osp.basename(filename))
        with open(local_file, 'wb') as file:
            file.write(file_backend.get(filename))
        return load_checkpoint_safe(local_file, map_location)


def load_from_pavi(filename: str, map_location: Any = None) -> Any:
    """Scheme ``pavi://``: download from the pavi model cloud, then load."""
    try:
        from pavi import modelcloud
    except ImportError as error:
        raise ImportError('Please install pavi to load checkpoints from modelcloud.') from error
    model = modelcloud.get(filename[len('pavi://'):])
    with TemporaryDirectory() as tmp_dir:
        local_file = osp.join(tmp_dir, model.name)
        model.download(local_file)
        return load_checkpoint_safe(local_file, map_location)
