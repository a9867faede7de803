"""Atomic file writing: a reader never sees a half-written prediction file.

Each file is written to a hidden temporary file in the destination folder and
renamed over the final name with ``os.replace`` (atomic on POSIX and Windows
within one file system). An interrupted writer (exception, Ctrl-C) removes
its temporary file; after a hard kill at most a hidden ``.<name>.*.tmp`` file
remains. Under the final name there is either nothing, the previous complete
file, or the new complete file.
"""
import contextlib
import json
import os
import os.path as osp
import tempfile
from typing import IO, Any, Iterator

import numpy as np
from PIL import Image

PathLike = str


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = 'wb') -> Iterator[IO]:
    """Open a temporary file that replaces ``path`` when the block ends normally.

    Args:
        path: Final file path; its folder must exist.
        mode: ``'wb'`` or ``'w'`` (text, UTF-8).

    Yields:
        The open temporary file.
    """
    if mode not in ('wb', 'w'):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    folder, name = osp.split(osp.abspath(path))
    handle, tmp_path = tempfile.mkstemp(prefix=f'.{name}.', suffix='.tmp', dir=folder)
    try:
        encoding = None if mode == 'wb' else 'utf-8'
        with os.fdopen(handle, mode, encoding=encoding) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp_path)
        raise


def atomic_write_json(path: PathLike, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically."""
    with atomic_open(path, 'w') as file:
        json.dump(obj, file)


def atomic_save_png(path: PathLike, array: np.ndarray) -> None:
    """Save a ``uint8`` array, (H, W) or (H, W, 3) RGB, as a PNG at ``path`` atomically."""
    with atomic_open(path, 'wb') as file:
        Image.fromarray(array).save(file, format='PNG')
