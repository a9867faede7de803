"""ADE20K-Full (847 classes) from the raw ADE20K 2021 release.

Reproduces the official MaskFormer script ``prepare_ade20k_full_sem_seg.py``.
It reads the raw release::

    ADE20K_2021_17_01/
      index_ade20k.pkl                     'filename' and 'folder' of the 27,574 images
      images/ADE/{training,validation}/<scene>/.../<name>.jpg
      images/ADE/{training,validation}/<scene>/.../<name>_seg.png

and writes the layout that :class:`~mmseg_maskformer.datasets.ADE20KFullDataset`
reads::

      images_detectron2/{training,validation}/<name>.jpg
      annotations_detectron2/{training,validation}/<name>.tif

Official rules reproduced:

1. The object class of a pixel is ``R // 10 * 256 + G`` of its ``*_seg.png``
   (0 = unlabelled); it is the ``id`` of :data:`ADE20K_FULL_CATEGORIES`.
2. Images whose short side exceeds 512 are resized to short side 512 (long side
   ``round(long / short * 512)``), the image bilinearly and the class map with
   nearest neighbour (OpenCV, as the official script).
3. The 847 classes become their train ids ``0..846``, every other class and
   unlabelled pixels ``65535``; labels are saved as a uint16 (PIL ``I;16``)
   TIFF and images re-encoded as JPEG (PIL defaults).
4. ``ADE_val_*`` images go to ``validation``, all others to ``training``.

Differences: images in modes other than RGB or grey (e.g. CMYK, which the
official script cannot save as JPEG) are converted to RGB; outputs are written
under a temporary name and renamed, so an interrupted run leaves no partial
file and a second run can skip the images already converted.

The index is a pickle: it is read by an unpickler that rebuilds only numpy
arrays, numpy scalars and plain containers, and refuses any other global.
"""
import os
import os.path as osp
import pickle
from multiprocessing import Pool
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from PIL import Image

from mmseg_maskformer.engine.checkpoint import NumpyOnlyUnpickler, UnsafeCheckpointError
from mmseg_maskformer.utils.atomic_files import atomic_save_image
from ..ade20k_full import ADE20K_FULL_IGNORE_INDEX
from .ade20k_full_categories import ADE20K_FULL_CATEGORIES

__all__ = [
    'ADE20K_FULL_CATEGORIES', 'INDEX_FILE', 'SPLITS', 'MAX_SHORT_SIDE', 'IMAGE_DIR',
    'ANNOTATION_DIR', 'UnsafeIndexError', 'ade_class_map', 'train_id_lut', 'resized_shape',
    'resize_pair', 'load_index', 'split_of', 'split_entries', 'missing_inputs', 'output_paths',
    'convert_image', 'convert_split'
]

#: Name of the index of the raw release, in its root folder.
INDEX_FILE = 'index_ade20k.pkl'
#: Output splits, in the order of the official script's folders.
SPLITS: Tuple[str, ...] = ('training', 'validation')
#: Images with a longer short side are resized to this short side.
MAX_SHORT_SIDE = 512
#: Output folders under the output root.
IMAGE_DIR = 'images_detectron2'
ANNOTATION_DIR = 'annotations_detectron2'
#: ``R // 10 <= 25`` in a uint8 channel: object classes lie in ``[0, 26 * 256)``.
NUM_ADE_CLASS_VALUES = (255 // 10 + 1) * 256

#: ``progress(done, total)`` callback of :func:`convert_split`.
ProgressFn = Callable[[int, int], None]


class UnsafeIndexError(UnsafeCheckpointError):
    """The index pickle refers to a global that a plain index does not hold."""


def ade_class_map(seg_rgb: np.ndarray) -> np.ndarray:
    """Decodes the object classes of a raw ``*_seg.png``.

    Args:
        seg_rgb: The PNG as an ``(H, W, C)`` uint8 array, ``C >= 3``, channels
            in RGB order (B, the instance channel, is not used).

    Returns:
        ``(H, W)`` int32 map of ADE20K object classes ``R // 10 * 256 + G``;
        0 marks unlabelled pixels, class ``k`` is ``objectnames[k - 1]``.

    Raises:
        ValueError: If the array is not an RGB(A) uint8 image.
    """
    if seg_rgb.dtype != np.uint8 or seg_rgb.ndim != 3 or seg_rgb.shape[2] < 3:
        raise ValueError(f'expected an (H, W, 3) uint8 segmentation, got {seg_rgb.dtype} of '
                         f'shape {seg_rgb.shape}')
    red = seg_rgb[..., 0].astype(np.int32)
    green = seg_rgb[..., 1].astype(np.int32)
    return red // 10 * 256 + green


def train_id_lut(categories: Sequence[Tuple[int, str]] = ADE20K_FULL_CATEGORIES,
                 ignore_index: int = ADE20K_FULL_IGNORE_INDEX) -> np.ndarray:
    """Lookup table from ADE20K object class to train id.

    Args:
        categories: ``categories[train_id] == (ade_class_id, name)``.
        ignore_index: Train id of every class not in ``categories``.

    Returns:
        ``(NUM_ADE_CLASS_VALUES,)`` uint16 array; ``lut[class_map]`` is the label map.

    Raises:
        ValueError: If an id is out of range or listed twice.
    """
    lut = np.full(NUM_ADE_CLASS_VALUES, ignore_index, dtype=np.uint16)
    seen = set()
    for train_id, (class_id, name) in enumerate(categories):
        if not 0 < class_id < NUM_ADE_CLASS_VALUES or class_id in seen:
            raise ValueError(f'category {name!r}: id {class_id} out of range or repeated')
        seen.add(class_id)
        lut[class_id] = train_id
    return lut


def resized_shape(height: int, width: int,
                  max_size: int = MAX_SHORT_SIDE) -> Optional[Tuple[int, int]]:
    """The official output size: short side ``max_size`` if it is longer.

    Args:
        height: Image height.
        width: Image width.
        max_size: Largest short side kept as is.

    Returns:
        ``(new_height, new_width)``, or None when the image keeps its size.
    """
    if width >= height > max_size:
        return max_size, round(width / float(height) * max_size)
    if height >= width > max_size:
        return round(height / float(width) * max_size), max_size
    return None


def resize_pair(image: np.ndarray, class_map: np.ndarray,
                max_size: int = MAX_SHORT_SIDE) -> Tuple[np.ndarray, np.ndarray]:
    """Resizes an image (bilinear) and its class map (nearest) as the official script.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` uint8 image.
        class_map: ``(H, W)`` int32 object classes.
        max_size: Largest short side kept as is.

    Returns:
        The image and the class map, resized or unchanged.
    """
    shape = resized_shape(image.shape[0], image.shape[1], max_size)
    if shape is None:
        return image, class_map
    size = (shape[1], shape[0])  # OpenCV takes (width, height)
    return (cv2.resize(image, size, interpolation=cv2.INTER_LINEAR),
            cv2.resize(class_map, size, interpolation=cv2.INTER_NEAREST))


class _IndexUnpickler(NumpyOnlyUnpickler):
    """The numpy-only unpickler of checkpoints, with errors that name the index."""

    def find_class(self, module: str, name: str) -> Any:
        """Returns an allowed global; refuses every other one before importing it."""
        if (module, name) in self._allowed:
            return self._allowed[(module, name)]
        raise UnsafeIndexError(
            f'refusing to read {self._filename}: it refers to {module}.{name}, but an ADE20K '
            'index holds only dicts, lists, strings and numpy arrays. If you trust the file, '
            'rewrite its "filename" and "folder" entries as lists of str into a new pickle in '
            'a separate process and pass that file with --index.')

    def persistent_load(self, pid: Any) -> Any:
        """Refuses persistent ids, which a plain pickle never holds."""
        raise UnsafeIndexError(f'refusing to read {self._filename}: it holds the persistent id '
                               f'{pid!r}, which a plain ADE20K index does not')


def load_index(path: str) -> Dict[str, List[str]]:
    """Reads the ``filename`` and ``folder`` lists of ``index_ade20k.pkl`` safely.

    Args:
        path: The index pickle.

    Returns:
        ``{'filename': [...], 'folder': [...]}`` as lists of str of equal length.

    Raises:
        FileNotFoundError: If the file is missing.
        UnsafeIndexError: If the pickle refers to a global other than numpy's.
        ValueError: If it is not a readable pickle of the index structure.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'missing ADE20K index {path}: it comes with the '
                                'ADE20K_2021_17_01 release (https://ade20k.csail.mit.edu/)')
    with open(path, 'rb') as file:
        try:
            index = _IndexUnpickler(file, path).load()
        except UnsafeIndexError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
            raise ValueError(f'{path} is not a readable pickle: {error}') from None
    if not isinstance(index, dict) or not {'filename', 'folder'} <= set(index):
        raise ValueError(f'{path}: expected a dict with "filename" and "folder" entries')
    names = [str(name) for name in index['filename']]
    folders = [str(folder) for folder in index['folder']]
    if len(names) != len(folders):
        raise ValueError(f'{path}: {len(names)} file names but {len(folders)} folders')
    return {'filename': names, 'folder': folders}


def split_of(filename: str) -> str:
    """Output split of an image: ``validation`` for ``ADE_val_*``, else ``training``."""
    parts = filename.split('_')
    return 'validation' if len(parts) > 1 and parts[1] == 'val' else 'training'


def _image_path(root: str, folder: str, filename: str) -> str:
    """Path of an image under ``root`` from its index folder.

    The index folders start with the release name
    (``ADE20K_2021_17_01/images/ADE/...``); they are resolved from their
    ``images`` component, so the release folder may have any name.
    """
    parts = folder.replace('\\', '/').split('/')
    if 'images' in parts:
        parts = parts[parts.index('images'):]
    return osp.join(root, *parts, filename)


def split_entries(index: Dict[str, List[str]], root: str, split: str) -> List[Tuple[str, str]]:
    """The images of one split, in index order.

    Args:
        index: The output of :func:`load_index`.
        root: The ``ADE20K_2021_17_01`` folder.
        split: ``'training'`` or ``'validation'``.

    Returns:
        ``(jpg path, name without extension)`` pairs.
    """
    if split not in SPLITS:
        raise ValueError(f'unknown split {split!r}; expected one of {SPLITS}')
    return [(_image_path(root, folder, name), osp.splitext(name)[0])
            for folder, name in zip(index['folder'], index['filename'])
            if split_of(name) == split]


def missing_inputs(entries: Sequence[Tuple[str, str]]) -> List[str]:
    """The images and ``*_seg.png`` files of ``entries`` that do not exist."""
    missing = []
    for jpg, _ in entries:
        seg = _seg_path(jpg)
        missing.extend(path for path in (jpg, seg) if not osp.isfile(path))
    return missing


def _seg_path(jpg: str) -> str:
    """The ``*_seg.png`` next to an image."""
    return f'{osp.splitext(jpg)[0]}_seg.png'


def output_paths(out_root: str, split: str, name: str) -> Tuple[str, str]:
    """``(image .jpg, label .tif)`` written for image ``name`` of ``split``."""
    return (osp.join(out_root, IMAGE_DIR, split, f'{name}.jpg'),
            osp.join(out_root, ANNOTATION_DIR, split, f'{name}.tif'))


def convert_image(jpg: str, out_image: str, out_label: str,
                  lut: Optional[np.ndarray] = None) -> Tuple[int, int]:
    """Converts one image and its ``*_seg.png`` to the official outputs.

    Args:
        jpg: The raw image; its ``*_seg.png`` lies next to it.
        out_image: The ``.jpg`` to write.
        out_label: The uint16 ``.tif`` to write.
        lut: :func:`train_id_lut` (built when None).

    Returns:
        ``(height, width)`` of the outputs.

    Raises:
        ValueError: If the image and its segmentation differ in size.
    """
    lut = train_id_lut() if lut is None else lut
    with Image.open(jpg) as pil_image:
        if pil_image.mode not in ('RGB', 'L'):
            pil_image = pil_image.convert('RGB')
        image = np.asarray(pil_image)
    with Image.open(_seg_path(jpg)) as seg:
        class_map = ade_class_map(np.asarray(seg))
    if image.shape[:2] != class_map.shape:
        raise ValueError(f'{jpg}: image {image.shape[:2]} and segmentation {class_map.shape} '
                         'differ in size')
    image, class_map = resize_pair(image, class_map)
    labels = lut[class_map]
    atomic_save_image(out_image, Image.fromarray(image), 'JPEG', fsync=False)
    # uint16 -> mode 'I;16'
    atomic_save_image(out_label, Image.fromarray(labels), 'TIFF', fsync=False)
    return labels.shape


def _convert_job(job: Tuple[str, str, str]) -> Tuple[int, int]:
    """:func:`convert_image` for a worker process (the table is rebuilt there)."""
    return convert_image(*job)


def convert_split(root: str, out_root: str, split: str, progress: Optional[ProgressFn] = None,
                  overwrite: bool = False, index: Optional[Dict[str, List[str]]] = None,
                  nproc: int = 1) -> Dict[str, int]:
    """Converts the images of one split.

    Args:
        root: The ``ADE20K_2021_17_01`` folder.
        out_root: Where ``images_detectron2/`` and ``annotations_detectron2/`` go.
        split: ``'training'`` or ``'validation'``.
        progress: Called as ``progress(done, total)`` after every image.
        overwrite: Convert again images whose two outputs exist.
        index: :func:`load_index` of ``root/index_ade20k.pkl`` (read when None).
        nproc: Worker processes.

    Returns:
        ``{'images': listed, 'converted': written, 'skipped': already complete}``.

    Raises:
        FileNotFoundError: If a listed image or segmentation is missing
            (checked before anything is written).
    """
    index = load_index(osp.join(root, INDEX_FILE)) if index is None else index
    entries = split_entries(index, root, split)
    missing = missing_inputs(entries)
    if missing:
        shown = '\n  '.join(missing[:5])
        raise FileNotFoundError(f'{len(missing)} input files of {split} are missing, e.g.:\n  '
                                f'{shown}')
    for folder in (IMAGE_DIR, ANNOTATION_DIR):
        os.makedirs(osp.join(out_root, folder, split), exist_ok=True)
    jobs = []
    for jpg, name in entries:
        outputs = output_paths(out_root, split, name)
        if overwrite or not all(osp.isfile(path) for path in outputs):
            jobs.append((jpg, *outputs))
    total, skipped = len(entries), len(entries) - len(jobs)
    if nproc > 1 and len(jobs) > 1:
        with Pool(min(nproc, len(jobs))) as pool:
            for done, _ in enumerate(pool.imap_unordered(_convert_job, jobs, chunksize=8), 1):
                if progress is not None:
                    progress(skipped + done, total)
    else:
        lut = train_id_lut()
        for done, job in enumerate(jobs, 1):
            convert_image(*job, lut=lut)
            if progress is not None:
                progress(skipped + done, total)
    return {'images': total, 'converted': len(jobs), 'skipped': skipped}
