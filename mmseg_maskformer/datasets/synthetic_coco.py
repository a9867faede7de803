"""A deterministic synthetic panoptic dataset in the official COCO layouts.

The data is written exactly as COCO 2017 is distributed::

    ROOT/train2017/000000000001.jpg
    ROOT/val2017/000001000001.jpg
    ROOT/annotations/panoptic_train2017.json
    ROOT/annotations/panoptic_train2017/000000000001.png
    ROOT/annotations/instances_train2017.json
    ROOT/annotations/panoptic_val2017.json
    ROOT/annotations/panoptic_val2017/000001000001.png
    ROOT/annotations/instances_val2017.json
    ROOT/meta.json

Image ids are ``index + 1`` in ``train2017`` and ``1000000 + index + 1`` in
``val2017`` (unique across splits, as in COCO); files are named by the id
zero-padded to 12 digits. The panoptic PNGs store segment ids as
``R + 256 * G + 256 ** 2 * B`` (``0`` = void); the panoptic JSON lists all 133
COCO panoptic categories, the instance JSON the 80 thing categories, with their
real COCO ids and names.

Only a subset of the categories occurs, and the task needs shape and context,
not colour:

* **stuff** (one segment per class): the background is cut into one to three
  regions by random straight or wavy lines, each region gets the texture of its
  class (stripes, cloud or checkerboard) in random colours, and a thin void band
  separates the regions;
* **things**: 2-6 instances per image (20-45 % of the image side, rotated,
  random solid colours that differ from the background's and from each other),
  each class with its own shape (see :data:`COCO_THING_SUBSET`); every instance
  after the first is, with probability 0.4, placed against an earlier instance
  and given its class, so that the two touch or overlap. Later instances are
  drawn on top; an instance is only kept if at least ``min_visible`` (1 % of
  the image) remains visible of it and of every earlier thing, otherwise it is
  re-placed (at most 10 tries) or dropped. Stuff keeps whatever remains visible;
* **crowd**: about 20 % of the images hold one ``iscrowd=1`` thing segment, a
  cluster of 5-9 small shapes of one class drawn behind the instances.

Every image is drawn from its own random stream seeded by
``(seed, split, index)``, so a sample does not depend on how many others are
generated.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple, Union

import cv2
import numpy as np

from mmseg_maskformer.utils.panoptic import VOID, id2rgb
from .coco_categories import COCO_PANOPTIC_CATEGORIES, coco_instance_categories
from .coco_format import (instance_annotations, mask_to_polygons, mask_to_uncompressed_rle,
                          segments_info_from_id_map)
from .synthetic import (ProgressFn, _random_colour, _split_regions, checker_texture,
                        cloud_texture, read_generator_meta, report_progress, shape_mask,
                        stripes_texture)

__all__ = [
    'COCO_STUFF_SUBSET', 'COCO_THING_SUBSET', 'SYNTHETIC_COCO_CATEGORIES', 'render_coco_sample',
    'segments_info_from_id_map', 'mask_to_polygons', 'mask_to_uncompressed_rle',
    'instance_annotations', 'generate_synthetic_coco'
]

#: Stuff categories that occur (COCO id -> name), each drawn with one texture.
COCO_STUFF_SUBSET: Dict[int, str] = {
    187: 'sky-other-merged',  # cloud
    190: 'floor-other-merged',  # checkerboard
    199: 'wall-other-merged',  # stripes
}
#: Thing categories that occur (COCO id -> name), each drawn with one shape.
COCO_THING_SUBSET: Dict[int, str] = {
    5: 'airplane',  # plus sign
    37: 'sports ball',  # disc
    38: 'kite',  # triangle
    60: 'donut',  # ring
    84: 'book',  # rectangle
}
#: All categories that occur, sorted by COCO id.
SYNTHETIC_COCO_CATEGORIES: Dict[int, str] = dict(
    sorted({**COCO_STUFF_SUBSET, **COCO_THING_SUBSET}.items()))

_TEXTURES = {187: cloud_texture, 190: checker_texture, 199: stripes_texture}
#: COCO thing id -> the ``shape_mask`` label of its shape (disc 119, ring 142,
#: rectangle 41, triangle 114, plus 43).
_SHAPES = {37: 119, 60: 142, 84: 41, 38: 114, 5: 43}
_THING_IDS = frozenset(cat['id'] for cat in COCO_PANOPTIC_CATEGORIES if cat['isthing'])

FORMAT_NAME = 'synthetic-coco'
FORMAT_VERSION = 1
#: ``(split folder, split code)``; the code seeds the samples and offsets the ids.
_SPLITS = (('train2017', 0), ('val2017', 1))
_ID_STRIDE = 1_000_000
_TRIES = 10

Shape = Tuple[int, int]


# ---------------------------------------------------------------------------
# Drawing one sample.
# ---------------------------------------------------------------------------
def _new_segment_id(rng: np.random.Generator, used: set) -> int:
    """A random segment id in ``[1, 256 ** 3)`` not in ``used`` (which is updated)."""
    while True:
        seg_id = int(rng.integers(1, 256**3))
        if seg_id not in used:
            used.add(seg_id)
            return seg_id


def _stuff_regions(shape: Shape, rng: np.random.Generator,
                   band: float) -> Tuple[np.ndarray, np.ndarray, int]:
    """Cut the image into one to three regions.

    Returns:
        ``(region, void, count)``: region index map (H, W) with values in
        ``[0, count)``, boolean void band (H, W) between regions, and ``count``.
    """
    region = np.zeros(shape, dtype=np.int64)
    void = np.zeros(shape, dtype=bool)
    count = int(rng.choice([1, 2, 3], p=[0.15, 0.55, 0.3]))
    if count == 1:
        return region, void, 1
    second, void = _split_regions(shape, rng, band)
    region[second] = 1
    if count == 3:
        min_pixels = 0.1 * region.size
        for _ in range(_TRIES):
            third, band2 = _split_regions(shape, rng, band)
            if (second & third).sum() >= min_pixels and (second & ~third).sum() >= min_pixels:
                region[second & third] = 2
                void |= band2 & second
                return region, void, 3
    return region, void, 2


def _draw_stuff(shape: Shape, rng: np.random.Generator, band: float, used: set
                ) -> Tuple[np.ndarray, np.ndarray, List[dict], List[np.ndarray]]:
    """Paint the textured background.

    Returns:
        ``(image, id_map, segments, colours)``: float image (H, W, 3), segment
        id map (H, W), ``{id, category_id, iscrowd}`` of each region and the
        colours used.
    """
    region, void, count = _stuff_regions(shape, rng, band)
    categories = [int(c) for c in rng.choice(sorted(COCO_STUFF_SUBSET), count, replace=False)]
    image = np.zeros(shape + (3, ), dtype=np.float64)
    id_map = np.zeros(shape, dtype=np.int64)
    segments, colours = [], []
    for index, category in enumerate(categories):
        texture, texture_colours = _TEXTURES[category](shape, rng)
        inside = region == index
        image[inside] = texture[inside]
        colours += texture_colours
        seg_id = _new_segment_id(rng, used)
        id_map[inside] = seg_id
        segments.append(dict(id=seg_id, category_id=category, iscrowd=0))
    id_map[void] = VOID
    return image, id_map, segments, colours


def _keeps_visible(owner: np.ndarray, mask: np.ndarray, num_things: int,
                   min_pixels: float) -> bool:
    """Whether drawing ``mask`` on top leaves every thing (and itself) visible enough.

    Args:
        owner: Index (H, W) of the thing owning each pixel, ``-1`` for none.
        mask: Boolean mask (H, W) of the new thing.
        num_things: Number of things drawn so far.
        min_pixels: Least visible area of every thing.
    """
    if mask.sum() < min_pixels:
        return False
    left = owner[~mask]
    visible = np.bincount(left[left >= 0], minlength=num_things)
    return bool(np.all(visible >= min_pixels))


def _crowd_masks(shape: Shape, category: int, rng: np.random.Generator) -> List[np.ndarray]:
    """Masks (H, W) of a cluster of 5-9 small shapes of one thing category."""
    side = min(shape)
    centre = rng.uniform(0.2, 0.8, size=2) * (shape[1], shape[0])
    masks = []
    for _ in range(int(rng.integers(5, 10))):
        radius, phi = rng.uniform(0, 0.16 * side), rng.uniform(0, 2 * np.pi)
        at = (centre[0] + radius * np.cos(phi), centre[1] + radius * np.sin(phi))
        masks.append(shape_mask(_SHAPES[category], shape, at, rng.uniform(0.07, 0.11) * side,
                                rng.uniform(0, 2 * np.pi), rng))
    return masks


def _place_instance(shape: Shape, placed: List[dict], rng: np.random.Generator,
                    touch_prob: float) -> dict:
    """Draw the category, centre, size and angle of a new instance.

    With probability ``touch_prob`` it repeats the category of an earlier
    instance and is centred so that the two touch or overlap.
    """
    side = min(shape)
    size = rng.uniform(0.2, 0.45) * side
    if placed and rng.random() < touch_prob:
        anchor = placed[int(rng.integers(len(placed)))]
        category = anchor['category_id']
        phi = rng.uniform(0, 2 * np.pi)
        dist = (anchor['size'] + size) / 2 * rng.uniform(0.55, 0.9)
        centre = (anchor['centre'][0] + dist * np.cos(phi),
                  anchor['centre'][1] + dist * np.sin(phi))
    else:
        category = int(rng.choice(sorted(COCO_THING_SUBSET)))
        centre = (rng.uniform(0.1, 0.9) * shape[1], rng.uniform(0.1, 0.9) * shape[0])
    return dict(category_id=category, centre=centre, size=size,
                angle=rng.uniform(0, 2 * np.pi))


def render_coco_sample(img_size: Shape,
                       rng: np.random.Generator,
                       boundary_width: float = 2.0,
                       min_visible: float = 0.01,
                       crowd_prob: float = 0.2,
                       touch_prob: float = 0.4) -> Tuple[np.ndarray, np.ndarray, List[dict]]:
    """Draw one image and its panoptic annotation.

    Args:
        img_size: ``(H, W)``.
        rng: Random generator; the output is a pure function of its state.
        boundary_width: Width in pixels of the void band between stuff regions.
        min_visible: Least visible area of every thing, as a fraction of the image.
        crowd_prob: Probability of one crowd segment.
        touch_prob: Probability that an instance is placed against an earlier
            one and takes its class.

    Returns:
        ``(image, id_map, segments)``: ``uint8`` image (H, W, 3) in BGR order
        (as written by OpenCV), ``int64`` segment ids (H, W) with 0 = void, and
        ``{id, category_id, iscrowd}`` of every segment present in ``id_map``
        (stuff first, then things in drawing order).
    """
    shape = (int(img_size[0]), int(img_size[1]))
    used: set = set()
    image, id_map, segments, stuff_colours = _draw_stuff(shape, rng, boundary_width, used)
    owner = np.full(shape, -1, dtype=np.int64)
    min_pixels = min_visible * owner.size
    things: List[dict] = []
    thing_colours: List[np.ndarray] = []

    def add_thing(masks: List[np.ndarray], category: int, iscrowd: int) -> None:
        for mask in masks:
            thing_colours.append(_random_colour(rng, stuff_colours + thing_colours, 70.0))
            image[mask] = thing_colours[-1]
        union = np.logical_or.reduce(masks)
        seg_id = _new_segment_id(rng, used)
        id_map[union], owner[union] = seg_id, len(things)
        things.append(dict(id=seg_id, category_id=category, iscrowd=iscrowd))

    if rng.random() < crowd_prob:
        category = int(rng.choice(sorted(COCO_THING_SUBSET)))
        for _ in range(_TRIES):
            masks = _crowd_masks(shape, category, rng)
            if _keeps_visible(owner, np.logical_or.reduce(masks), len(things), min_pixels):
                add_thing(masks, category, iscrowd=1)
                break
    placed: List[dict] = []
    for _ in range(int(rng.integers(2, 7))):
        for _ in range(_TRIES):
            spec = _place_instance(shape, placed, rng, touch_prob)
            mask = shape_mask(_SHAPES[spec['category_id']], shape, spec['centre'], spec['size'],
                              spec['angle'], rng)
            if _keeps_visible(owner, mask, len(things), min_pixels):
                add_thing([mask], spec['category_id'], iscrowd=0)
                placed.append(spec)
                break

    image = image + rng.normal(0.0, 3.0, size=image.shape)
    present = set(np.unique(id_map).tolist())
    segments = [seg for seg in segments + things if seg['id'] in present]
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), id_map, segments


# ---------------------------------------------------------------------------
# The dataset on disk.
# ---------------------------------------------------------------------------
def _image_ids(split_code: int, count: int) -> List[int]:
    return [split_code * _ID_STRIDE + index + 1 for index in range(count)]


def _annotation_files(root: str) -> List[str]:
    return [osp.join(root, 'annotations', f'{kind}_{split}.json')
            for split, _ in _SPLITS for kind in ('panoptic', 'instances')]


def _expected_files(root: str, counts: Dict[str, int]) -> List[str]:
    files = _annotation_files(root)
    for split, code in _SPLITS:
        for image_id in _image_ids(code, counts.get(split, 0)):
            files.append(osp.join(root, split, f'{image_id:012d}.jpg'))
            files.append(osp.join(root, 'annotations', f'panoptic_{split}', f'{image_id:012d}.png'))
    return files


def _write_meta(root: str, params: dict, summary: Optional[dict]) -> None:
    """Record the parameters; ``summary`` is None while the files are being written."""
    meta = dict(format=FORMAT_NAME, version=FORMAT_VERSION, params=params,
                complete=summary is not None, summary=summary)
    with open(osp.join(root, 'meta.json'), 'w', encoding='utf-8') as f:
        json.dump(meta, f, indent=2)


def _clear_previous(root: str, meta: Optional[dict]) -> None:
    """Remove a previous synthetic dataset; refuse to touch anything else."""
    if meta is None:
        for split, _ in _SPLITS:
            png_dir = osp.join(root, 'annotations', f'panoptic_{split}')
            for folder in (osp.join(root, split), png_dir):
                if osp.isdir(folder) and os.listdir(folder):
                    raise FileExistsError(
                        f'{folder} is not empty and {root} holds no synthetic-COCO meta.json; '
                        'refusing to overwrite it, choose an empty folder')
        for path in _annotation_files(root):
            if osp.exists(path):
                raise FileExistsError(f'{path} exists and {root} holds no synthetic-COCO '
                                      'meta.json; refusing to overwrite it')
        return
    os.remove(osp.join(root, 'meta.json'))
    params = meta.get('params', {})
    counts = {'train2017': params.get('num_train', 0), 'val2017': params.get('num_val', 0)}
    for path in _expected_files(root, counts):
        if osp.isfile(path):
            os.remove(path)


def _dataset_info(seed: int) -> dict:
    return dict(description=f'Synthetic COCO-layout panoptic dataset (seed {seed})',
                url='', version='1.0', year=2017, contributor='mmseg_maskformer',
                date_created='2017-01-01 00:00:00')


_LICENSES = [dict(id=1, name='Synthetic data, no restrictions', url='')]


def _split_statistics(num_images: int, infos: List[dict], void_pixels: int,
                      total_pixels: int) -> dict:
    """Counts and class pixel fractions of one split's ``segments_info``."""
    pixels = {name: 0 for name in SYNTHETIC_COCO_CATEGORIES.values()}
    for seg in infos:
        pixels[SYNTHETIC_COCO_CATEGORIES[seg['category_id']]] += seg['area']
    total = max(total_pixels, 1)
    things = [seg for seg in infos if seg['category_id'] in _THING_IDS]
    return dict(num_images=num_images, num_segments=len(infos),
                num_stuff_segments=len(infos) - len(things),
                num_instances=sum(1 for seg in things if not seg['iscrowd']),
                num_crowd=sum(1 for seg in things if seg['iscrowd']),
                void_fraction=void_pixels / total,
                class_pixel_fraction={name: count / total for name, count in pixels.items()})


def _write_split(root: str, split: str, code: int, count: int, size: Shape, seed: int,
                 quality: int, progress: Optional[ProgressFn] = None) -> dict:
    """Write the images, PNGs and both JSON files of one split; return its statistics.

    ``progress(split, done, count)`` is called after every 500 images and the last one.
    """
    img_dir, png_dir = osp.join(root, split), osp.join(root, 'annotations', f'panoptic_{split}')
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(png_dir, exist_ok=True)
    images, panoptic, instances, all_infos = [], [], [], []
    void_pixels = 0
    for index, image_id in enumerate(_image_ids(code, count)):
        rng = np.random.default_rng([seed, code, index])
        image, id_map, segments = render_coco_sample(size, rng)
        infos = segments_info_from_id_map(id_map, segments)
        stem = f'{image_id:012d}'
        if not cv2.imwrite(osp.join(img_dir, stem + '.jpg'), image,
                           [cv2.IMWRITE_JPEG_QUALITY, quality]):
            raise OSError(f'could not write {osp.join(img_dir, stem)}.jpg')
        if not cv2.imwrite(osp.join(png_dir, stem + '.png'), id2rgb(id_map)[..., ::-1]):
            raise OSError(f'could not write {osp.join(png_dir, stem)}.png')
        images.append(dict(license=1, file_name=stem + '.jpg', height=size[0], width=size[1],
                           id=image_id))
        panoptic.append(dict(segments_info=infos, file_name=stem + '.png', image_id=image_id))
        instances += instance_annotations(id_map, infos, image_id, len(instances) + 1,
                                          _THING_IDS)
        all_infos += infos
        void_pixels += int((id_map == VOID).sum())
        report_progress(progress, split, index + 1, count)

    common = dict(info=_dataset_info(seed), licenses=_LICENSES, images=images)
    for kind, content in (('panoptic', dict(common, annotations=panoptic,
                                            categories=list(COCO_PANOPTIC_CATEGORIES))),
                          ('instances', dict(common, annotations=instances,
                                             categories=coco_instance_categories()))):
        with open(osp.join(root, 'annotations', f'{kind}_{split}.json'), 'w',
                  encoding='utf-8') as f:
            json.dump(content, f)
    return _split_statistics(count, all_infos, void_pixels, count * size[0] * size[1])


def _validate(num_train: int, num_val: int, img_size: Shape, seed: int, quality: int) -> None:
    if num_train < 0 or num_val < 0:
        raise ValueError(f'image counts must be >= 0, got {num_train} and {num_val}')
    if num_train + num_val == 0:
        raise ValueError('at least one image must be generated')
    if max(num_train, num_val) >= _ID_STRIDE:
        raise ValueError(f'at most {_ID_STRIDE - 1} images per split')
    if min(img_size) < 32:
        raise ValueError(f'img_size must be at least 32 pixels per side, got {img_size}')
    if seed < 0:
        raise ValueError(f'seed must be >= 0, got {seed}')
    if not 0 <= quality <= 100:
        raise ValueError(f'jpeg_quality must lie in [0, 100], got {quality}')


def generate_synthetic_coco(root: str,
                            num_train: int = 6000,
                            num_val: int = 100,
                            img_size: Union[int, Tuple[int, int]] = 128,
                            seed: int = 0,
                            jpeg_quality: int = 95,
                            progress: Optional[ProgressFn] = None) -> dict:
    """Write (or reuse) the synthetic dataset under ``root`` in the COCO layouts.

    Generation is skipped when ``root/meta.json`` records the same parameters,
    a finished run and every file is present; otherwise a previous synthetic
    dataset in ``root`` (finished or interrupted) is replaced. COCO-style
    folders or annotation files without our ``meta.json`` are never overwritten.

    Args:
        root: Dataset root (created if missing).
        num_train: Number of images in ``train2017``.
        num_val: Number of images in ``val2017``.
        img_size: Image size, an int or ``(H, W)``.
        seed: Random seed; equal seeds give identical files.
        jpeg_quality: JPEG quality of the images (0-100).
        progress: Called as ``progress(split, done, total)`` after every 500
            images of a split and after its last one (not when reusing).

    Returns:
        Summary dict with ``root``, ``params``, ``categories`` (COCO id -> name
        of the categories that occur), ``splits`` (per split: ``num_images``,
        ``num_segments``, ``num_stuff_segments``, ``num_instances``,
        ``num_crowd``, ``void_fraction`` and ``class_pixel_fraction`` by
        category name) and ``generated`` (False when an existing dataset was
        reused).

    Raises:
        ValueError: On invalid parameters.
        FileExistsError: If ``root`` holds foreign COCO-style data.
    """
    size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    _validate(num_train, num_val, size, seed, jpeg_quality)
    params = dict(num_train=int(num_train), num_val=int(num_val), img_size=[int(s) for s in size],
                  seed=int(seed), jpeg_quality=int(jpeg_quality))
    counts = {'train2017': params['num_train'], 'val2017': params['num_val']}
    meta = read_generator_meta(root, FORMAT_NAME)
    if (meta is not None and meta.get('version') == FORMAT_VERSION and meta.get('complete')
            and meta.get('params') == params
            and all(osp.isfile(p) for p in _expected_files(root, counts))):
        return dict(meta['summary'], root=root, generated=False)

    _clear_previous(root, meta)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    _write_meta(root, params, None)
    splits = {
        split: _write_split(root, split, code, counts[split], size, params['seed'],
                            params['jpeg_quality'], progress)
        for split, code in _SPLITS
    }
    summary = dict(root=root, params=params,
                   categories={str(k): v for k, v in SYNTHETIC_COCO_CATEGORIES.items()},
                   splits=splits)
    _write_meta(root, params, summary)
    return dict(summary, generated=True)
