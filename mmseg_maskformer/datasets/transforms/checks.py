"""Load-time checks of data: bad files fail with the file named, never silently.

Every check either raises an error whose message starts with the file path, or,
when the config opts in with ``skip_invalid=True``, logs a warning and returns
None: mmengine datasets then draw another sample (training only; in test mode
a dropped sample is an error, so every evaluated file is checked).
"""
import io
from typing import Optional

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform, LoadImageFromFile
from mmengine import fileio
from mmengine.logging import print_log
from mmseg.datasets.transforms import LoadAnnotations as MMSegLoadAnnotations
from PIL import Image

from mmseg_maskformer.registry import TRANSFORMS

_JPEG_START, _JPEG_END = b'\xff\xd8', b'\xff\xd9'
_PNG_START, _PNG_END = b'\x89PNG\r\n\x1a\n', b'IEND'
#: Bytes at the end of a file searched for its end marker (encoders may pad).
_END_WINDOW = 64


def reject(message: str, skip_invalid: bool, error: type = ValueError) -> None:
    """Raise ``error(message)``, or log ``message`` as a warning when skipping.

    Args:
        message: ``'<file>: <problem>'``.
        skip_invalid: Log a warning instead of raising.
        error: The exception class raised.
    """
    if not skip_invalid:
        raise error(message)
    print_log(f'skipped: {message}', logger='current', level=30)


def image_bytes_problem(data: bytes) -> Optional[str]:
    """Describe why encoded image bytes are unusable before decoding, or return None.

    Catches what decoders accept silently: a JPEG or PNG cut short decodes
    into a partly grey image with OpenCV. A file without its end marker in
    the last bytes is decoded fully with Pillow, which accepts complete images
    followed by trailing data (camera trailers) and refuses truncated ones.

    Args:
        data: The file content.

    Returns:
        A sentence naming the problem, or None.
    """
    if len(data) == 0:
        return 'empty file'
    markers = ((_JPEG_START, _JPEG_END, 'truncated JPEG (no end-of-image marker)'),
               (_PNG_START, _PNG_END, 'truncated PNG (no IEND chunk)'))
    for start, end, problem in markers:
        if data.startswith(start) and end not in data[-_END_WINDOW:]:
            # no end marker near the end: truncated, or valid with trailing data
            return None if _pil_decodes_fully(data) else problem
    return None


def _pil_decodes_fully(data: bytes) -> bool:
    """Whether Pillow decodes every byte of the image (it refuses truncated files)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except Exception:  # noqa: BLE001  (Pillow raises OSError, SyntaxError, ...)
        return False
    return True


def read_image_checked(path: str,
                       flag: str = 'color',
                       channel_order: str = 'bgr',
                       backend: Optional[str] = None,
                       backend_args: Optional[dict] = None,
                       skip_invalid: bool = False) -> Optional[np.ndarray]:
    """Read and decode an image file, naming the file and the problem on failure.

    Args:
        path: File path or URI.
        flag: ``mmcv.imfrombytes`` flag (``'color'``, ``'unchanged'``, ...).
        channel_order: ``'bgr'`` or ``'rgb'``.
        backend: ``mmcv.imfrombytes`` decoder (None: mmcv's default).
        backend_args: mmengine file backend arguments.
        skip_invalid: Return None with a logged warning instead of raising.

    Returns:
        The decoded image, (H, W) or (H, W, C), or None for a skipped bad file.

    Raises:
        FileNotFoundError: ``'<path>: file not found'``.
        ValueError: ``'<path>: <problem>'`` for an empty, truncated or
            undecodable file.
    """
    try:
        data = fileio.get(path, backend_args=backend_args)
    except FileNotFoundError:
        reject(f'{path}: file not found', skip_invalid, FileNotFoundError)
        return None
    problem = image_bytes_problem(data)
    if problem is None:
        try:
            image = mmcv.imfrombytes(data, flag=flag, channel_order=channel_order,
                                     backend=backend)
        except Exception as error:  # noqa: BLE001  (decoders raise anything)
            image, problem = None, f'{type(error).__name__}: {error}'
        if image is None or image.size == 0:
            problem = f'cannot be decoded as an image ({problem or "corrupt or not an image"})'
    if problem is not None:
        reject(f'{path}: {problem}', skip_invalid)
        return None
    return image


def seg_map_problem(seg_map: np.ndarray, image_shape, num_classes: int,
                    ignore_index: int) -> Optional[str]:
    """Describe what is wrong with a semantic map, or return None when it is valid.

    Args:
        seg_map: Integer label map (H, W).
        image_shape: ``(H, W)`` (or longer) of the image it annotates.
        num_classes: Valid labels are ``0 .. num_classes - 1``.
        ignore_index: The one other value allowed.

    Returns:
        A sentence naming the problem, or None.
    """
    if tuple(seg_map.shape[:2]) != tuple(image_shape[:2]):
        return (f'label map of size {tuple(seg_map.shape[:2])} for an image of size '
                f'{tuple(image_shape[:2])}')
    values = np.unique(seg_map)
    bad = values[((values < 0) | (values >= num_classes)) & (values != ignore_index)]
    if bad.size:
        return (f'labels {bad[:10].tolist()} outside 0..{num_classes - 1} (and ignore '
                f'{ignore_index}); check num_classes and reduce_zero_label')
    return None


@TRANSFORMS.register_module()
class CheckSegMap(BaseTransform):
    """Reject a semantic map that does not fit its image or holds unknown labels.

    Place it right after the annotations are loaded. The map is compared with the
    image's original size (``ori_shape``), so it may follow a test-time resize
    (annotations loaded after ``Resize`` stay at the original size).

    Required keys: ``gt_seg_map``, ``ori_shape``; ``seg_map_path`` is named in errors.

    Args:
        num_classes: Number of classes K; valid labels are ``0 .. K - 1``.
        ignore_index: The label of unlabelled pixels.
        skip_invalid: Instead of raising, log a warning and drop the sample
            (the dataset then draws another one; training only: in test mode
            mmengine datasets refuse dropped samples, so every file is checked).

    Raises:
        ValueError: Naming the file and the problem, unless ``skip_invalid``.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255,
                 skip_invalid: bool = False) -> None:
        if num_classes < 1:
            raise ValueError(f'num_classes must be positive, got {num_classes}')
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.skip_invalid = skip_invalid

    def transform(self, results: dict) -> Optional[dict]:
        """Return ``results`` unchanged, or None for a dropped invalid sample."""
        problem = seg_map_problem(np.asarray(results['gt_seg_map']), results['ori_shape'],
                                  self.num_classes, self.ignore_index)
        if problem is None:
            return results
        reject(f"{results.get('seg_map_path', '<unknown file>')}: {problem}", self.skip_invalid)
        return None

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index}, skip_invalid={self.skip_invalid})')


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` that names the file and the problem of a bad image.

    mmcv fails on a missing file with a bare OS error, on an undecodable one
    with an ``AssertionError`` (or returns None), and loads a truncated JPEG or
    PNG as a partly grey image. This transform checks the bytes first
    (:func:`image_bytes_problem`) and behaves as ``LoadImageFromFile``
    otherwise (same arguments and keys).

    Args:
        skip_invalid: Instead of raising, log a warning and drop the sample
            (training only, see the module docstring).
        **kwargs: Arguments of mmcv's ``LoadImageFromFile``
            (``ignore_empty`` is replaced by ``skip_invalid``).

    Raises:
        FileNotFoundError: ``'<img_path>: file not found'``.
        ValueError: ``'<img_path>: <problem>'`` for an empty, truncated or
            undecodable file.
    """

    def __init__(self, skip_invalid: bool = False, **kwargs) -> None:
        if kwargs.pop('ignore_empty', False):
            raise ValueError('CheckedLoadImageFromFile: use skip_invalid=True instead of '
                             'ignore_empty=True (it also logs which file was skipped)')
        if kwargs.get('file_client_args') is not None:
            raise ValueError('CheckedLoadImageFromFile: use backend_args, file_client_args '
                             'is deprecated')
        super().__init__(**kwargs)
        self.skip_invalid = skip_invalid

    def transform(self, results: dict) -> Optional[dict]:
        """Load ``results['img_path']``; None for a dropped bad file."""
        img = read_image_checked(results['img_path'], self.color_type,
                                 backend=self.imdecode_backend,
                                 backend_args=self.backend_args,
                                 skip_invalid=self.skip_invalid)
        if img is None:
            return None
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{super().__repr__()[:-1]}, skip_invalid={self.skip_invalid})'


@TRANSFORMS.register_module()
class CheckedLoadAnnotations(MMSegLoadAnnotations):
    """mmseg's ``LoadAnnotations`` that names the file and the problem of a bad label map.

    mmseg fails on a missing label PNG with a bare OS error and on a truncated
    or undecodable one with ``'NoneType' object has no attribute 'squeeze'``
    (or loads a truncated PNG partly). The label map is checked with
    :func:`read_image_checked` first (one extra decode of the PNG), then
    loaded exactly as ``LoadAnnotations`` does (same arguments and keys).

    Args:
        skip_invalid: Instead of raising, log a warning and drop the sample
            (training only, see the module docstring).
        **kwargs: Arguments of mmseg's ``LoadAnnotations``.

    Raises:
        FileNotFoundError: ``'<seg_map_path>: file not found'``.
        ValueError: ``'<seg_map_path>: <problem>'``.
    """

    def __init__(self, skip_invalid: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.skip_invalid = skip_invalid

    def transform(self, results: dict) -> Optional[dict]:
        """Load ``results['seg_map_path']``; None for a dropped bad file."""
        label = read_image_checked(results['seg_map_path'], 'unchanged',
                                   backend=self.imdecode_backend,
                                   backend_args=self.backend_args,
                                   skip_invalid=self.skip_invalid)
        if label is None:
            return None
        return super().transform(results)
