"""Atomic file writing: a reader never sees a half-written file.

Each file is written to a hidden temporary file in the destination folder and
renamed over the final name with ``os.replace`` (atomic on POSIX and Windows
within one file system). An interrupted writer (exception, Ctrl-C) removes
its temporary file; after a hard kill at most a hidden ``.<name>.*.tmp`` file
remains. Under the final name there is either nothing, the previous complete
file, or the new complete file. Used for prediction files, converted
checkpoints and prepared datasets.
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
def atomic_open(path: PathLike, mode: str = 'wb', fsync: bool = True) -> Iterator[IO]:
    """Open a temporary file that replaces ``path`` when the block ends normally.

    Args:
        path: Final file path; its folder must exist.
        mode: ``'wb'`` or ``'w'`` (text, UTF-8).
        fsync: Flush the file to disk before the rename (off for bulk dataset
            preparation, where an interrupted run is simply resumed).

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
            if fsync:
                file.flush()
                os.fsync(file.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp_path)
        raise


def atomic_write_json(path: PathLike, obj: Any, fsync: bool = True, **dump_args) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (``dump_args`` go to ``json.dump``)."""
    with atomic_open(path, 'w', fsync=fsync) as file:
        json.dump(obj, file, **dump_args)


def atomic_save_png(path: PathLike, array: np.ndarray, fsync: bool = True) -> None:
    """Save a ``uint8`` array, (H, W) or (H, W, 3) RGB, as a PNG at ``path`` atomically."""
    atomic_save_image(path, Image.fromarray(array), 'PNG', fsync=fsync)


def atomic_save_image(path: PathLike, image: Image.Image, fmt: str, fsync: bool = True) -> None:
    """Save a PIL image in format ``fmt`` (``'PNG'``, ``'JPEG'``, ``'TIFF'``...) atomically."""
    with atomic_open(path, 'wb', fsync=fsync) as file:
        image.save(file, format=fmt)
