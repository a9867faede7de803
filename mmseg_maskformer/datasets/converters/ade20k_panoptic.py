"""ADE20K panoptic and instance annotations from the SceneParsing release.

Builds, from the raw ``ADEChallengeData2016/`` release (``images/``, the
semantic ``annotations/`` and the ``annotations_instance/`` PNGs of the
SceneParsing instance release), the files that the official Mask2Former scripts
``prepare_ade20k_pan_seg.py`` and ``prepare_ade20k_ins_seg.py`` write:

- ``ade20k_panoptic_{split}.json`` + ``ade20k_panoptic_{split}/*.png`` (COCO
  panoptic format, categories 0..149 = the SceneParse150 classes, 100 things);
- ``ade20k_instance_{split}.json`` (COCO instance format, compressed RLE masks).

Raw encodings: a semantic PNG stores ``class + 1`` (0 = "other", ignored); an
instance PNG stores the Instance100 class id (1..100) in R and a per-image
instance id in G (0 = no instance).

Official rules reproduced: stuff first, one segment per stuff class present;
then one thing segment per instance id, whose category is the SceneParse150
class mapped from its Instance100 class; things paint over stuff; pixels of
thing classes without an instance stay void. Like the official script, a stuff
segment's ``area``/``bbox`` are measured on its semantic mask, before things
paint over it (``official_stats=False`` measures every segment on the final
PNG instead and drops segments left without pixels).

As in the official files, the instance JSON reuses the panoptic (0-based
SceneParse150) category ids (7 = bed, 8 = windowpane, ...) with the Instance100
names. Deliberate difference: segment ids are deterministic (see
:func:`segment_id`) instead of random panopticapi colours.
"""
import json
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_util
from PIL import Image

from mmseg_maskformer.utils.atomic_files import atomic_write_json
from mmseg_maskformer.utils.panoptic import id2rgb
from ..coco_format import mask_bbox
from .jobs import run_jobs

__all__ = [
    'ADE20K_SEM_SEG_CATEGORIES', 'ADE20K_PALETTE', 'INSTANCE100_TO_SEMANTIC',
    'ADE20K_INSTANCE_NAMES', 'SPLITS', 'ade20k_panoptic_categories',
    'ade20k_instance_categories', 'segment_id', 'panoptic_from_annotations',
    'instances_from_annotation', 'convert_image', 'split_paths', 'missing_inputs', 'image_ids',
    'outputs_complete', 'convert_split'
]

#: Names of the 150 SceneParse150 classes (category ids 0..149), spelled as the
#: official ``ADE20K_SEM_SEG_CATEGORIES`` (``'window '`` included).
ADE20K_SEM_SEG_CATEGORIES: Tuple[str, ...] = (
    'wall', 'building', 'sky', 'floor', 'tree', 'ceiling', 'road, route', 'bed', 'window ',
    'grass', 'cabinet', 'sidewalk, pavement', 'person', 'earth, ground', 'door', 'table',
    'mountain, mount', 'plant', 'curtain', 'chair', 'car', 'water', 'painting, picture', 'sofa',
    'shelf', 'house', 'sea', 'mirror', 'rug', 'field', 'armchair', 'seat', 'fence', 'desk',
    'rock, stone', 'wardrobe, closet, press', 'lamp', 'tub', 'rail', 'cushion',
    'base, pedestal, stand', 'box', 'column, pillar', 'signboard, sign',
    'chest of drawers, chest, bureau, dresser', 'counter', 'sand', 'sink', 'skyscraper',
    'fireplace', 'refrigerator, icebox', 'grandstand, covered stand', 'path', 'stairs', 'runway',
    'case, display case, showcase, vitrine', 'pool table, billiard table, snooker table',
    'pillow', 'screen door, screen', 'stairway, staircase', 'river', 'bridge, span', 'bookcase',
    'blind, screen', 'coffee table', 'toilet, can, commode, crapper, pot, potty, stool, throne',
    'flower', 'book', 'hill', 'bench', 'countertop', 'stove', 'palm, palm tree', 'kitchen island',
    'computer', 'swivel chair', 'boat', 'bar', 'arcade machine',
    'hovel, hut, hutch, shack, shanty', 'bus', 'towel', 'light', 'truck', 'tower', 'chandelier',
    'awning, sunshade, sunblind', 'street lamp', 'booth', 'tv', 'plane', 'dirt track', 'clothes',
    'pole', 'land, ground, soil', 'bannister, banister, balustrade, balusters, handrail',
    'escalator, moving staircase, moving stairway', 'ottoman, pouf, pouffe, puff, hassock',
    'bottle', 'buffet, counter, sideboard', 'poster, posting, placard, notice, bill, card',
    'stage', 'van', 'ship', 'fountain',
    'conveyer belt, conveyor belt, conveyer, conveyor, transporter', 'canopy',
    'washer, automatic washer, washing machine', 'plaything, toy', 'pool', 'stool',
    'barrel, cask', 'basket, handbasket', 'falls', 'tent', 'bag', 'minibike, motorbike', 'cradle',
    'oven', 'ball', 'food, solid food', 'step, stair', 'tank, storage tank', 'trade name',
    'microwave', 'pot', 'animal', 'bicycle', 'lake', 'dishwasher', 'screen', 'blanket, cover',
    'sculpture', 'hood, exhaust hood', 'sconce', 'vase', 'traffic light', 'tray', 'trash can',
    'fan', 'pier', 'crt screen', 'plate', 'monitor', 'bulletin board', 'shower', 'radiator',
    'glass, drinking glass', 'clock', 'flag',
)

#: Official colours of the 150 classes (mmseg's ADE20K palette differs at id 48).
ADE20K_PALETTE: Tuple[Tuple[int, int, int], ...] = (
    (120, 120, 120), (180, 120, 120), (6, 230, 230), (80, 50, 50), (4, 200, 3), (120, 120, 80),
    (140, 140, 140), (204, 5, 255), (230, 230, 230), (4, 250, 7), (224, 5, 255), (235, 255, 7),
    (150, 5, 61), (120, 120, 70), (8, 255, 51), (255, 6, 82), (143, 255, 140), (204, 255, 4),
    (255, 51, 7), (204, 70, 3), (0, 102, 200), (61, 230, 250), (255, 6, 51), (11, 102, 255),
    (255, 7, 71), (255, 9, 224), (9, 7, 230), (220, 220, 220), (255, 9, 92), (112, 9, 255),
    (8, 255, 214), (7, 255, 224), (255, 184, 6), (10, 255, 71), (255, 41, 10), (7, 255, 255),
    (224, 255, 8), (102, 8, 255), (255, 61, 6), (255, 194, 7), (255, 122, 8), (0, 255, 20),
    (255, 8, 41), (255, 5, 153), (6, 51, 255), (235, 12, 255), (160, 150, 20), (0, 163, 255),
    (140, 140, 200), (250, 10, 15), (20, 255, 0), (31, 255, 0), (255, 31, 0), (255, 224, 0),
    (153, 255, 0), (0, 0, 255), (255, 71, 0), (0, 235, 255), (0, 173, 255), (31, 0, 255),
    (11, 200, 200), (255, 82, 0), (0, 255, 245), (0, 61, 255), (0, 255, 112), (0, 255, 133),
    (255, 0, 0), (255, 163, 0), (255, 102, 0), (194, 255, 0), (0, 143, 255), (51, 255, 0),
    (0, 82, 255), (0, 255, 41), (0, 255, 173), (10, 0, 255), (173, 255, 0), (0, 255, 153),
    (255, 92, 0), (255, 0, 255), (255, 0, 245), (255, 0, 102), (255, 173, 0), (255, 0, 20),
    (255, 184, 184), (0, 31, 255), (0, 255, 61), (0, 71, 255), (255, 0, 204), (0, 255, 194),
    (0, 255, 82), (0, 10, 255), (0, 112, 255), (51, 0, 255), (0, 194, 255), (0, 122, 255),
    (0, 255, 163), (255, 153, 0), (0, 255, 10), (255, 112, 0), (143, 255, 0), (82, 0, 255),
    (163, 255, 0), (255, 235, 0), (8, 184, 170), (133, 0, 255), (0, 255, 92), (184, 0, 255),
    (255, 0, 31), (0, 184, 255), (0, 214, 255), (255, 0, 112), (92, 255, 0), (0, 224, 255),
    (112, 224, 255), (70, 184, 160), (163, 0, 255), (153, 0, 255), (71, 255, 0), (255, 0, 163),
    (255, 204, 0), (255, 0, 143), (0, 255, 235), (133, 255, 0), (255, 0, 235), (245, 0, 255),
    (255, 0, 122), (255, 245, 0), (10, 190, 212), (214, 255, 0), (0, 204, 255), (20, 0, 255),
    (255, 255, 0), (0, 153, 255), (0, 41, 255), (0, 255, 204), (41, 0, 255), (41, 255, 0),
    (173, 0, 255), (0, 245, 255), (71, 0, 255), (122, 0, 255), (0, 255, 184), (0, 92, 255),
    (184, 255, 0), (0, 133, 255), (255, 214, 0), (25, 194, 194), (102, 255, 0), (92, 0, 255),
)

#: ``INSTANCE100_TO_SEMANTIC[k - 1]``: the category id (0-based SceneParse150
#: class) of Instance100 class ``k`` (``ade20k_instance_catid_mapping.txt``).
INSTANCE100_TO_SEMANTIC: Tuple[int, ...] = (
    7, 8, 10, 12, 14, 15, 18, 19, 20, 22, 23, 24, 27, 30, 31, 32, 33, 35, 36, 37, 38, 39, 41, 42,
    43, 44, 45, 47, 49, 50, 53, 55, 56, 57, 58, 62, 64, 65, 66, 67, 69, 70, 71, 72, 73, 74, 75,
    76, 78, 80, 81, 82, 83, 85, 86, 87, 88, 89, 90, 92, 93, 95, 97, 98, 102, 103, 104, 107, 108,
    110, 111, 112, 115, 116, 118, 119, 120, 121, 123, 124, 125, 126, 127, 129, 130, 132, 133, 134,
    135, 136, 137, 138, 139, 142, 143, 144, 146, 147, 148, 149,
)

#: ``ADE20K_INSTANCE_NAMES[k - 1]``: name of Instance100 class ``k``, as in the
#: ``categories`` of the official ``ade20k_instance_imgCatIds.json``.
ADE20K_INSTANCE_NAMES: Tuple[str, ...] = (
    'bed', 'windowpane', 'cabinet', 'person', 'door', 'table', 'curtain', 'chair', 'car',
    'painting', 'sofa', 'shelf', 'mirror', 'armchair', 'seat', 'fence', 'desk', 'wardrobe',
    'lamp', 'bathtub', 'railing', 'cushion', 'box', 'column', 'signboard', 'chest of drawers',
    'counter', 'sink', 'fireplace', 'refrigerator', 'stairs', 'case', 'pool table', 'pillow',
    'screen door', 'bookcase', 'coffee table', 'toilet', 'flower', 'book', 'bench', 'countertop',
    'stove', 'palm', 'kitchen island', 'computer', 'swivel chair', 'boat', 'arcade machine',
    'bus', 'towel', 'light', 'truck', 'chandelier', 'awning', 'streetlight', 'booth',
    'television receiver', 'airplane', 'apparel', 'pole', 'bannister', 'ottoman', 'bottle', 'van',
    'ship', 'fountain', 'washer', 'plaything', 'stool', 'barrel', 'basket', 'bag', 'minibike',
    'oven', 'ball', 'food', 'step', 'trade name', 'microwave', 'pot', 'animal', 'bicycle',
    'dishwasher', 'screen', 'sculpture', 'hood', 'sconce', 'vase', 'traffic light', 'tray',
    'ashcan', 'fan', 'plate', 'monitor', 'bulletin board', 'radiator', 'glass', 'clock', 'flag',
)

#: ``(output name, raw folder name)`` of the two splits of the release.
SPLITS: Dict[str, str] = {'train': 'training', 'val': 'validation'}
#: Semantic value of "other" pixels (class id -1 in the official script).
_OTHER = 0


def ade20k_panoptic_categories() -> List[dict]:
    """The 150 categories of the panoptic JSON.

    Returns:
        ``{id, name, isthing, color}`` for ids 0..149; a class is a thing when an
        Instance100 class maps to it.
    """
    things = set(INSTANCE100_TO_SEMANTIC)
    return [dict(id=cat_id, name=name, isthing=int(cat_id in things),
                 color=list(ADE20K_PALETTE[cat_id]))
            for cat_id, name in enumerate(ADE20K_SEM_SEG_CATEGORIES)]


def ade20k_instance_categories() -> List[dict]:
    """The 100 categories of the instance JSON: ``{id, name}``.

    As the official ``prepare_ade20k_ins_seg.py``, a category's id is its 0-based
    SceneParse150 id (bed = 7, ...), shared with the panoptic file, and its name
    is the Instance100 name ("windowpane" where the panoptic file says "window ").
    """
    return [dict(id=INSTANCE100_TO_SEMANTIC[k], name=name)
            for k, name in enumerate(ADE20K_INSTANCE_NAMES)]


def segment_id(category_id: int, index: int) -> int:
    """Deterministic, non-zero segment id of the ``index``-th segment of a category.

    ``id = category_id + 1 + 256 * index``: the PNG's R channel is the category
    id + 1 and G (then B) counts the segments of that category, so ids are
    unique within an image.
    """
    return category_id + 1 + 256 * index


def _thing_masks(instance: np.ndarray) -> List[Tuple[int, int, np.ndarray]]:
    """Split an instance PNG into instances.

    Args:
        instance: ``uint8`` (H, W, 3): R = Instance100 class (1..100), G = instance id.

    Returns:
        ``(instance id, Instance100 class, mask (H, W) bool)`` per instance id > 0,
        in increasing instance id.

    Raises:
        ValueError: If an instance has several classes or a class outside 1..100.
    """
    classes, ids = instance[..., 0], instance[..., 1]
    things = []
    for ins_id in np.unique(ids):
        if ins_id == 0:
            continue
        mask = ids == ins_id
        found = np.unique(classes[mask])
        if len(found) != 1 or not 1 <= found[0] <= len(INSTANCE100_TO_SEMANTIC):
            raise ValueError(f'instance {ins_id} has instance class(es) {found.tolist()}; '
                             'expected exactly one in 1..100')
        things.append((int(ins_id), int(found[0]), mask))
    return things


def panoptic_from_annotations(semantic: np.ndarray, instance: np.ndarray,
                              official_stats: bool = True) -> Tuple[np.ndarray, List[dict]]:
    """Combine a semantic and an instance PNG into a panoptic segment-id map.

    Args:
        semantic: ``uint8`` (H, W), SceneParse150 class + 1, 0 = other (void).
        instance: ``uint8`` (H, W, 3), R = Instance100 class, G = instance id.
        official_stats: Measure a stuff segment on its semantic mask, before things
            paint over it, as the official script does; otherwise measure every
            segment on the returned map and drop segments without pixels.

    Returns:
        ``id_map`` (H, W) ``int64`` (0 = void) and ``segments_info``
        ``{id, category_id, area, bbox, iscrowd}``: stuff segments by increasing
        category, then things by increasing instance id.

    Raises:
        ValueError: On mismatched shapes, a semantic value above 150, or an
            invalid instance (see :func:`_thing_masks`).
    """
    if semantic.shape != instance.shape[:2] or instance.shape[2:] != (3, ):
        raise ValueError(f'semantic {semantic.shape} and instance {instance.shape} PNGs '
                         'do not match: expected (H, W) and (H, W, 3)')
    if semantic.max(initial=0) > len(ADE20K_SEM_SEG_CATEGORIES):
        raise ValueError(f'semantic value {semantic.max()} > {len(ADE20K_SEM_SEG_CATEGORIES)}')
    is_thing = {cat['id']: cat['isthing'] for cat in ade20k_panoptic_categories()}
    id_map = np.zeros(semantic.shape, dtype=np.int64)
    segments, counts = [], {}
    masks = [(int(value) - 1, semantic == value) for value in np.unique(semantic)
             if value != _OTHER and not is_thing[int(value) - 1]]
    masks += [(INSTANCE100_TO_SEMANTIC[cls - 1], mask) for _, cls, mask in _thing_masks(instance)]
    for cat_id, mask in masks:
        seg_id = segment_id(cat_id, counts.get(cat_id, 0))
        counts[cat_id] = counts.get(cat_id, 0) + 1
        id_map[mask] = seg_id
        segments.append(dict(id=seg_id, category_id=cat_id, area=int(mask.sum()),
                             bbox=mask_bbox(mask), iscrowd=0))
    if not official_stats:
        segments = _measure(id_map, segments)
    return id_map, segments


def _measure(id_map: np.ndarray, segments: Sequence[dict]) -> List[dict]:
    """Re-measure ``area``/``bbox`` on ``id_map`` (H, W), dropping empty segments."""
    measured = []
    for seg in segments:
        mask = id_map == seg['id']
        if mask.any():
            measured.append(dict(seg, area=int(mask.sum()), bbox=mask_bbox(mask)))
    return measured


def instances_from_annotation(instance: np.ndarray, image_id: str) -> List[dict]:
    """COCO instance annotations of one instance PNG, as ``prepare_ade20k_ins_seg.py``.

    Args:
        instance: ``uint8`` (H, W, 3), R = Instance100 class, G = instance id.
        image_id: The image id (file name without extension).

    Returns:
        ``{image_id, category_id (the 0-based SceneParse150 id, as the
        official file), iscrowd, bbox, segmentation, area}``
        per instance id > 0 (increasing); ``segmentation`` is compressed RLE with
        ``counts`` as ``str``. No ``id``: the caller numbers them per split.
    """
    annotations = []
    for _, cls, mask in _thing_masks(instance):
        rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
        rle['counts'] = rle['counts'].decode('utf-8')
        annotations.append(dict(image_id=image_id,
                                category_id=INSTANCE100_TO_SEMANTIC[cls - 1], iscrowd=0,
                                bbox=mask_bbox(mask), segmentation=rle,
                                area=int(mask_util.area(rle))))
    return annotations


def split_paths(root: str, split: str) -> Dict[str, str]:
    """Input and output paths of one split under the ``ADEChallengeData2016`` root.

    Args:
        root: The ``ADEChallengeData2016`` folder.
        split: ``'train'`` or ``'val'``.

    Returns:
        ``images``, ``semantic``, ``instance`` (raw folders), ``panoptic_dir``,
        ``panoptic_json`` and ``instance_json`` (outputs).
    """
    folder = SPLITS[split]
    return dict(
        images=osp.join(root, 'images', folder),
        semantic=osp.join(root, 'annotations', folder),
        instance=osp.join(root, 'annotations_instance', folder),
        panoptic_dir=osp.join(root, f'ade20k_panoptic_{split}'),
        panoptic_json=osp.join(root, f'ade20k_panoptic_{split}.json'),
        instance_json=osp.join(root, f'ade20k_instance_{split}.json'))


def missing_inputs(root: str, split: str) -> List[str]:
    """The raw folders of ``split`` that do not exist (empty when all do)."""
    paths = split_paths(root, split)
    return [paths[key] for key in ('images', 'semantic', 'instance') if not osp.isdir(paths[key])]


def image_ids(root: str, split: str) -> List[str]:
    """Sorted ids (file names without ``.jpg``) of the images of ``split``."""
    folder = split_paths(root, split)['images']
    return sorted(name[:-4] for name in os.listdir(folder) if name.endswith('.jpg'))


def convert_image(job: Tuple[str, str, str, bool]) -> Tuple[dict, dict, List[dict]]:
    """Convert one image and write its panoptic PNG.

    Args:
        job: ``(root, split, image id, official_stats)``.

    Returns:
        The ``images`` entry, the panoptic ``annotations`` entry and the instance
        annotations (without ``id``) of the image.
    """
    root, split, image_id, official_stats = job
    paths = split_paths(root, split)
    with Image.open(osp.join(paths['images'], image_id + '.jpg')) as img:
        width, height = img.size
    semantic = _read_png(osp.join(paths['semantic'], image_id + '.png'), ndim=2)
    instance = _read_png(osp.join(paths['instance'], image_id + '.png'), ndim=3)
    if semantic.shape != (height, width):
        raise ValueError(f'{image_id}: semantic PNG {semantic.shape} does not match the '
                         f'image ({height}, {width})')
    try:
        id_map, segments = panoptic_from_annotations(semantic, instance, official_stats)
    except ValueError as err:
        raise ValueError(f'{image_id}: {err}') from err
    Image.fromarray(id2rgb(id_map)).save(osp.join(paths['panoptic_dir'], image_id + '.png'))
    image = dict(id=image_id, file_name=image_id + '.jpg', width=width, height=height)
    annotation = dict(image_id=image_id, file_name=image_id + '.png', segments_info=segments)
    return image, annotation, instances_from_annotation(instance, image_id)


def _read_png(path: str, ndim: int) -> np.ndarray:
    """Read a ``uint8`` PNG with ``ndim`` dimensions, naming ``path`` on failure."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'missing annotation {path}')
    array = np.asarray(Image.open(path))
    if array.dtype != np.uint8 or array.ndim != ndim:
        raise ValueError(f'{path}: expected a uint8 PNG with {ndim} dims, got '
                         f'{array.dtype} {array.shape}')
    return array[..., :3] if ndim == 3 else array


def outputs_complete(root: str, split: str) -> bool:
    """Whether both JSONs and every panoptic PNG of ``split`` exist for its images."""
    paths = split_paths(root, split)
    if not (osp.isfile(paths['panoptic_json']) and osp.isfile(paths['instance_json'])):
        return False
    with open(paths['panoptic_json']) as f:
        panoptic = json.load(f)
    if [image['id'] for image in panoptic['images']] != image_ids(root, split):
        return False
    return all(osp.isfile(osp.join(paths['panoptic_dir'], ann['file_name']))
               for ann in panoptic['annotations'])


def convert_split(root: str, split: str, nproc: int = 1, official_stats: bool = True,
                  progress: Optional[Callable[[int, int], None]] = None) -> Dict[str, int]:
    """Write the panoptic PNGs and JSON and the instance JSON of one split.

    Args:
        root: The ``ADEChallengeData2016`` folder (raw folders must exist).
        split: ``'train'`` or ``'val'``.
        nproc: Worker processes (1 = in this process).
        official_stats: See :func:`panoptic_from_annotations`.
        progress: Called with ``(done, total)`` after every image.

    Returns:
        Counts: ``images``, ``segments``, ``stuff``, ``things`` (= instances).
    """
    paths = split_paths(root, split)
    os.makedirs(paths['panoptic_dir'], exist_ok=True)
    ids = image_ids(root, split)
    jobs = [(root, split, image_id, official_stats) for image_id in ids]
    results = run_jobs(convert_image, jobs, nproc, progress)
    instances = [dict(ann, id=k + 1)
                 for k, ann in enumerate(ann for _, _, anns in results for ann in anns)]
    images = [r[0] for r in results]
    atomic_write_json(paths['instance_json'],
                      dict(images=images, annotations=instances,
                           categories=ade20k_instance_categories()), fsync=False)
    atomic_write_json(paths['panoptic_json'],
                      dict(images=images, annotations=[r[1] for r in results],
                           categories=ade20k_panoptic_categories()), fsync=False)
    num_segments = sum(len(r[1]['segments_info']) for r in results)
    return dict(images=len(results), segments=num_segments,
                stuff=num_segments - len(instances), things=len(instances))
