"""Cityscapes panoptic (COCO panoptic format) and instance (COCO format) annotations.

Both are built from the raw ``gtFine/{split}/<city>/*_gtFine_instanceIds.png``:
16-bit PNGs holding, per pixel, the label id (0..33) for stuff and for thing
pixels without an instance ("car group", ...), and ``label id * 1000 +
instance`` for thing instances.

Panoptic, as cityscapesScripts' ``preparation/createPanopticImgs.py``:

- outputs ``gtFine/cityscapes_panoptic_{split}.json`` and
  ``gtFine/cityscapes_panoptic_{split}/<image id>_gtFine_panoptic.png``
  (``_trainId`` appended to both names with ``use_train_id``);
- one segment per distinct raw value, in increasing raw value, whose segment id
  is the raw value itself; values of labels with ``ignoreInEval`` (unlabeled,
  parking, caravan, ...) are skipped and their pixels stay 0 (void);
- ``category_id`` is the label id (the train id with ``use_train_id``);
  ``iscrowd`` is 1 for a thing pixel group without instance (raw value < 1000
  of a label with instances), 0 otherwise; ``area``/``bbox`` are measured on the
  raw mask;
- ``categories``: the 19 labels without ``ignoreInEval``, in label order, with
  ``id``, ``name``, ``color``, ``supercategory`` (the Cityscapes category) and
  ``isthing`` (``hasInstances``): 8 things, person .. bicycle;
- ``images``: ``id`` = ``<city>_<seq>_<frame>``, ``file_name`` =
  ``<image id>_gtFine_leftImg8bit.png`` (the script's name, which is no
  existing file: the image is ``leftImg8bit/{split}/<city>/<image id>_leftImg8bit.png``,
  see :class:`CityscapesPanopticDataset`).

Instance, as mmdet's ``tools/dataset_converters/cityscapes.py``:
``annotations/instancesonly_filtered_gtFine_{split}.json`` with one annotation
per raw value of a label with instances and without ``ignoreInEval`` (crowd
groups included with ``iscrowd=1``), compressed RLE ``segmentation``, ``area``
and float ``bbox`` from the RLE; categories ``{id, name}`` with the label ids of
the 8 things; images ``{id, file_name: '<city>/<image id>_leftImg8bit.png',
height, width, segm_file}``. Deliberate difference: annotation ids start at 1,
since pycocotools' ``COCOeval`` takes a match with ground-truth id 0 for no
match (mmdet's file starts at 0); image ids start at 0 as in mmdet's file; a
split without instances keeps an empty ``annotations`` list (mmdet drops the key).
"""
import json
import os
import os.path as osp
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import numpy as np
import pycocotools.mask as mask_util
from PIL import Image

from mmseg_maskformer.utils.atomic_files import atomic_write_json
from mmseg_maskformer.utils.panoptic import id2rgb
from ..coco_format import mask_bbox
from .jobs import run_jobs

__all__ = [
    'CityscapesLabel', 'CITYSCAPES_LABELS', 'INSTANCE_DIVISOR', 'label_by_id',
    'cityscapes_panoptic_categories', 'cityscapes_instance_categories',
    'panoptic_from_instance_ids', 'instances_from_instance_ids', 'read_instance_ids',
    'find_annotations', 'panoptic_paths', 'instance_json_path', 'convert_panoptic_split',
    'convert_instance_split'
]

Progress = Optional[Callable[[int, int], None]]

#: Raw thing values are ``label id * INSTANCE_DIVISOR + instance``.
INSTANCE_DIVISOR = 1000
_SUFFIX = '_gtFine_instanceIds.png'


class CityscapesLabel(NamedTuple):
    """One row of cityscapesScripts' ``helpers/labels.py``."""
    name: str
    id: int
    train_id: int
    category: str
    has_instances: bool
    ignore_in_eval: bool
    color: Tuple[int, int, int]


#: The 35 Cityscapes labels (cityscapesScripts ``labels``), in their order.
CITYSCAPES_LABELS: Tuple[CityscapesLabel, ...] = (
    CityscapesLabel('unlabeled', 0, 255, 'void', False, True, (0, 0, 0)),
    CityscapesLabel('ego vehicle', 1, 255, 'void', False, True, (0, 0, 0)),
    CityscapesLabel('rectification border', 2, 255, 'void', False, True, (0, 0, 0)),
    CityscapesLabel('out of roi', 3, 255, 'void', False, True, (0, 0, 0)),
    CityscapesLabel('static', 4, 255, 'void', False, True, (0, 0, 0)),
    CityscapesLabel('dynamic', 5, 255, 'void', False, True, (111, 74, 0)),
    CityscapesLabel('ground', 6, 255, 'void', False, True, (81, 0, 81)),
    CityscapesLabel('road', 7, 0, 'flat', False, False, (128, 64, 128)),
    CityscapesLabel('sidewalk', 8, 1, 'flat', False, False, (244, 35, 232)),
    CityscapesLabel('parking', 9, 255, 'flat', False, True, (250, 170, 160)),
    CityscapesLabel('rail track', 10, 255, 'flat', False, True, (230, 150, 140)),
    CityscapesLabel('building', 11, 2, 'construction', False, False, (70, 70, 70)),
    CityscapesLabel('wall', 12, 3, 'construction', False, False, (102, 102, 156)),
    CityscapesLabel('fence', 13, 4, 'construction', False, False, (190, 153, 153)),
    CityscapesLabel('guard rail', 14, 255, 'construction', False, True, (180, 165, 180)),
    CityscapesLabel('bridge', 15, 255, 'construction', False, True, (150, 100, 100)),
    CityscapesLabel('tunnel', 16, 255, 'construction', False, True, (150, 120, 90)),
    CityscapesLabel('pole', 17, 5, 'object', False, False, (153, 153, 153)),
    CityscapesLabel('polegroup', 18, 255, 'object', False, True, (153, 153, 153)),
    CityscapesLabel('traffic light', 19, 6, 'object', False, False, (250, 170, 30)),
    CityscapesLabel('traffic sign', 20, 7, 'object', False, False, (220, 220, 0)),
    CityscapesLabel('vegetation', 21, 8, 'nature', False, False, (107, 142, 35)),
    CityscapesLabel('terrain', 22, 9, 'nature', False, False, (152, 251, 152)),
    CityscapesLabel('sky', 23, 10, 'sky', False, False, (70, 130, 180)),
    CityscapesLabel('person', 24, 11, 'human', True, False, (220, 20, 60)),
    CityscapesLabel('rider', 25, 12, 'human', True, False, (255, 0, 0)),
    CityscapesLabel('car', 26, 13, 'vehicle', True, False, (0, 0, 142)),
    CityscapesLabel('truck', 27, 14, 'vehicle', True, False, (0, 0, 70)),
    CityscapesLabel('bus', 28, 15, 'vehicle', True, False, (0, 60, 100)),
    CityscapesLabel('caravan', 29, 255, 'vehicle', True, True, (0, 0, 90)),
    CityscapesLabel('trailer', 30, 255, 'vehicle', True, True, (0, 0, 110)),
    CityscapesLabel('train', 31, 16, 'vehicle', True, False, (0, 80, 100)),
    CityscapesLabel('motorcycle', 32, 17, 'vehicle', True, False, (0, 0, 230)),
    CityscapesLabel('bicycle', 33, 18, 'vehicle', True, False, (119, 11, 32)),
    CityscapesLabel('license plate', -1, -1, 'vehicle', False, True, (0, 0, 142)),
)

_BY_ID: Dict[int, CityscapesLabel] = {label.id: label for label in CITYSCAPES_LABELS}


def label_by_id(label_id: int) -> CityscapesLabel:
    """The label of a label id (``id2label``).

    Raises:
        ValueError: For an id that no Cityscapes label has.
    """
    if label_id not in _BY_ID:
        raise ValueError(f'raw value of label id {label_id}, which no Cityscapes label has '
                         '(label ids are -1..33)')
    return _BY_ID[label_id]


def cityscapes_panoptic_categories(use_train_id: bool = False) -> List[dict]:
    """The 19 ``categories`` of the panoptic JSON, in label order.

    Args:
        use_train_id: Use train ids (0..18) as category ids instead of label ids.

    Returns:
        ``{id, name, color, supercategory, isthing}`` per label without
        ``ignoreInEval``.
    """
    return [dict(id=label.train_id if use_train_id else label.id, name=label.name,
                 color=list(label.color), supercategory=label.category,
                 isthing=int(label.has_instances))
            for label in CITYSCAPES_LABELS if not label.ignore_in_eval]


def cityscapes_instance_categories() -> List[dict]:
    """The 8 ``categories`` ``{id (label id), name}`` of the instance JSON."""
    return [dict(id=label.id, name=label.name) for label in CITYSCAPES_LABELS
            if label.has_instances and not label.ignore_in_eval]


def _split_value(value: int) -> Tuple[CityscapesLabel, bool]:
    """``(label, has no instance id)`` of a raw instanceIds value."""
    if value < INSTANCE_DIVISOR:
        return label_by_id(value), True
    return label_by_id(value // INSTANCE_DIVISOR), False


def panoptic_from_instance_ids(instance_ids: np.ndarray,
                               use_train_id: bool = False) -> Tuple[np.ndarray, List[dict]]:
    """Panoptic segment ids and ``segments_info`` of one instanceIds map.

    Args:
        instance_ids: Raw values (H, W), integer (see the module docstring).
        use_train_id: Category ids are train ids instead of label ids.

    Returns:
        ``id_map`` (H, W) ``int64``: the raw value on kept segments, 0 (void)
        elsewhere; ``segments_info`` ``{id, category_id, area, bbox, iscrowd}``
        in increasing segment id.

    Raises:
        ValueError: On a value of an unknown label id.
    """
    instance_ids = np.asarray(instance_ids).astype(np.int64)
    id_map = np.zeros(instance_ids.shape, dtype=np.int64)
    segments = []
    for value in np.unique(instance_ids).tolist():
        label, no_instance = _split_value(value)
        if label.ignore_in_eval:
            continue
        mask = instance_ids == value
        id_map[mask] = value
        segments.append(dict(
            id=value, category_id=label.train_id if use_train_id else label.id,
            area=int(mask.sum()), bbox=mask_bbox(mask),
            iscrowd=int(no_instance and label.has_instances)))
    return id_map, segments


def instances_from_instance_ids(instance_ids: np.ndarray) -> List[dict]:
    """COCO instance annotations of one instanceIds map, as mmdet's converter.

    Args:
        instance_ids: Raw values (H, W), integer.

    Returns:
        ``{iscrowd, category_id (label id), bbox (float xywh), area, segmentation
        (compressed RLE, ``counts`` as str)}`` per raw value of a thing label
        without ``ignoreInEval``, in increasing value; no ``id``/``image_id``.

    Raises:
        ValueError: On a value of an unknown label id.
    """
    instance_ids = np.asarray(instance_ids).astype(np.int64)
    annotations = []
    for value in np.unique(instance_ids).tolist():
        label, no_instance = _split_value(value)
        if not label.has_instances or label.ignore_in_eval:
            continue
        mask = np.asfortranarray((instance_ids == value).astype(np.uint8))
        rle = mask_util.encode(mask)
        bbox = mask_util.toBbox(rle).tolist()
        area = int(mask_util.area(rle))
        rle['counts'] = rle['counts'].decode('utf-8')
        annotations.append(dict(iscrowd=int(no_instance), category_id=label.id, bbox=bbox,
                                area=area, segmentation=rle))
    return annotations


def read_instance_ids(path: str) -> np.ndarray:
    """Read a ``*_gtFine_instanceIds.png`` as an (H, W) ``int64`` array.

    Raises:
        FileNotFoundError: When ``path`` does not exist.
        ValueError: When the PNG is not single-channel.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'missing annotation {path}')
    with Image.open(path) as png:
        array = np.asarray(png)
    if array.ndim != 2:
        raise ValueError(f'{path}: expected a single-channel (16-bit) instanceIds PNG, got '
                         f'shape {array.shape}')
    return array.astype(np.int64)


def find_annotations(root: str, split: str) -> List[Tuple[str, str]]:
    """``(city, image id)`` of every ``gtFine/{split}/<city>/*_gtFine_instanceIds.png``.

    Args:
        root: The Cityscapes root (holding ``gtFine/``).
        split: ``train``, ``val`` or ``test``.

    Returns:
        The pairs, sorted by path as ``createPanopticImgs.py`` does.

    Raises:
        FileNotFoundError: When the split folder is missing or holds no file.
    """
    folder = osp.join(root, 'gtFine', split)
    if not osp.isdir(folder):
        raise FileNotFoundError(f'missing folder {folder} (gtFine_trainvaltest.zip from '
                                'https://www.cityscapes-dataset.com/downloads/)')
    found = sorted((city, name[:-len(_SUFFIX)]) for city in os.listdir(folder)
                   if osp.isdir(osp.join(folder, city))
                   for name in os.listdir(osp.join(folder, city)) if name.endswith(_SUFFIX))
    if not found:
        raise FileNotFoundError(f'no *{_SUFFIX} file under {folder}/<city>/')
    return found


def panoptic_paths(root: str, split: str, out_dir: Optional[str] = None,
                   use_train_id: bool = False) -> Dict[str, str]:
    """Output ``json`` and PNG folder ``png_dir`` of a panoptic split.

    Args:
        root: The Cityscapes root.
        split: The split name.
        out_dir: Output folder; ``<root>/gtFine`` (the script's default) if None.
        use_train_id: Add the script's ``_trainId`` suffix.
    """
    base = f'cityscapes_panoptic_{split}' + ('_trainId' if use_train_id else '')
    out_dir = osp.join(root, 'gtFine') if out_dir is None else out_dir
    return dict(json=osp.join(out_dir, base + '.json'), png_dir=osp.join(out_dir, base))


def instance_json_path(root: str, split: str, out_dir: Optional[str] = None) -> str:
    """Output instance JSON of a split (``<root>/annotations/`` by default)."""
    out_dir = osp.join(root, 'annotations') if out_dir is None else out_dir
    return osp.join(out_dir, f'instancesonly_filtered_gtFine_{split}.json')


def _convert_panoptic(job: Tuple[str, str, str, str, str, bool]) -> Tuple[dict, dict]:
    """Convert one image: write its panoptic PNG; return its image and annotation entries."""
    root, split, city, image_id, png_dir, use_train_id = job
    raw = read_instance_ids(osp.join(root, 'gtFine', split, city, image_id + _SUFFIX))
    try:
        id_map, segments = panoptic_from_instance_ids(raw, use_train_id)
    except ValueError as err:
        raise ValueError(f'{image_id}: {err}') from err
    png_name = image_id + '_gtFine_panoptic.png'
    Image.fromarray(id2rgb(id_map)).save(osp.join(png_dir, png_name))
    image = dict(id=image_id, width=int(raw.shape[1]), height=int(raw.shape[0]),
                 file_name=image_id + '_gtFine_leftImg8bit.png')
    return image, dict(image_id=image_id, file_name=png_name, segments_info=segments)


def _convert_instances(job: Tuple[str, str, str, str]) -> Tuple[dict, List[dict]]:
    """Convert one image: its image entry and instance annotations (no ids)."""
    root, split, city, image_id = job
    raw = read_instance_ids(osp.join(root, 'gtFine', split, city, image_id + _SUFFIX))
    try:
        annotations = instances_from_instance_ids(raw)
    except ValueError as err:
        raise ValueError(f'{image_id}: {err}') from err
    image = dict(file_name=f'{city}/{image_id}_leftImg8bit.png', height=int(raw.shape[0]),
                 width=int(raw.shape[1]), segm_file=f'{city}/{image_id}_gtFine_labelIds.png')
    return image, annotations


def _save_json(obj: dict, path: str, **dump_args) -> None:
    """Write JSON atomically (a complete file or none), creating its folder."""
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    atomic_write_json(path, obj, fsync=False, **dump_args)


def convert_panoptic_split(root: str, split: str, out_dir: Optional[str] = None,
                           use_train_id: bool = False, nproc: int = 1,
                           progress: Progress = None) -> Dict[str, int]:
    """Write the panoptic JSON and PNGs of one split, as ``createPanopticImgs.py``.

    Args:
        root: The Cityscapes root (``gtFine/{split}/<city>/*_instanceIds.png``).
        split: ``train``, ``val`` or ``test``.
        out_dir: See :func:`panoptic_paths`.
        use_train_id: Category ids are train ids; ``_trainId`` names.
        nproc: Worker processes (1 = in this process).
        progress: Called with ``(done, total)`` after every image.

    Returns:
        Counts: ``images``, ``segments``, ``crowd`` (crowd segments).
    """
    paths = panoptic_paths(root, split, out_dir, use_train_id)
    os.makedirs(paths['png_dir'], exist_ok=True)
    jobs = [(root, split, city, image_id, paths['png_dir'], use_train_id)
            for city, image_id in find_annotations(root, split)]
    results = run_jobs(_convert_panoptic, jobs, nproc, progress)
    _save_json(dict(images=[r[0] for r in results], annotations=[r[1] for r in results],
                    categories=cityscapes_panoptic_categories(use_train_id)),
               paths['json'], sort_keys=True, indent=4)
    segments = [seg for _, ann in results for seg in ann['segments_info']]
    return dict(images=len(results), segments=len(segments),
                crowd=sum(seg['iscrowd'] for seg in segments))


def convert_instance_split(root: str, split: str, out_dir: Optional[str] = None,
                           nproc: int = 1, progress: Progress = None) -> Dict[str, int]:
    """Write the COCO instance JSON of one split, as mmdet's Cityscapes converter.

    Args:
        root: The Cityscapes root.
        split: ``train``, ``val`` or ``test``.
        out_dir: See :func:`instance_json_path`.
        nproc: Worker processes (1 = in this process).
        progress: Called with ``(done, total)`` after every image.

    Returns:
        Counts: ``images``, ``instances`` (all annotations), ``crowd``.
    """
    jobs = [(root, split, city, image_id) for city, image_id in find_annotations(root, split)]
    results = run_jobs(_convert_instances, jobs, nproc, progress)
    images, annotations = [], []
    for img_id, (image, anns) in enumerate(results):
        images.append(dict(image, id=img_id))
        annotations += [dict(ann, image_id=img_id, id=len(annotations) + k + 1)
                        for k, ann in enumerate(anns)]
    _save_json(dict(images=images, annotations=annotations,
                    categories=cityscapes_instance_categories()),
               instance_json_path(root, split, out_dir))
    return dict(images=len(images), instances=len(annotations),
                crowd=sum(ann['iscrowd'] for ann in annotations))
