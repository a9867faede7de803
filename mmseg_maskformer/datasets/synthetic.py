"""A deterministic synthetic semantic-segmentation dataset in the ADE20K layout.

The data is written exactly as mmseg's ``ADE20KDataset`` expects it::

    ROOT/images/training/ADE_train_00000001.jpg
    ROOT/images/validation/ADE_val_00000001.jpg
    ROOT/annotations/training/ADE_train_00000001.png
    ROOT/annotations/validation/ADE_val_00000001.png
    ROOT/meta.json

Annotations are single-channel ``uint8`` PNGs in which ``0`` means "other"
(ignored once ``reduce_zero_label=True`` maps it to 255) and ADE20K class ``k``
(0-based) is stored as ``k + 1``.

The task needs shape and context, not colour alone:

* **stuff** classes fill the background and differ only by *texture*: every
  image is cut into one or two regions by a random line or wavy curve and each
  region gets a different texture with random colours; a thin band along the
  cut is labelled "other";
* **thing** classes (1-3 per image, 35-60 % of the image side, randomly placed
  and rotated, never overlapping each other) differ only by *shape*; each is
  filled with a random solid colour that stands out from the background colours.

Every image is drawn from its own random stream seeded by
``(seed, split, index)``, so a sample does not depend on how many others are
generated.
"""
import json
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

__all__ = [
    'STUFF_CLASSES', 'THING_CLASSES', 'SYNTHETIC_CLASSES', 'render_sample',
    'generate_synthetic_ade20k', 'print_progress'
]

#: Stuff classes (0-based ADE20K index -> name), each drawn with one texture.
STUFF_CLASSES: Dict[int, str] = {0: 'wall', 2: 'sky', 3: 'floor'}
#: Thing classes (0-based ADE20K index -> name), each drawn with one shape.
THING_CLASSES: Dict[int, str] = {
    41: 'box',
    43: 'signboard',
    114: 'tent',
    119: 'ball',
    142: 'plate',
}
#: All classes that occur in the synthetic data, sorted by ADE20K index.
SYNTHETIC_CLASSES: Dict[int, str] = dict(sorted({**STUFF_CLASSES, **THING_CLASSES}.items()))

FORMAT_NAME = 'synthetic-ade20k'
FORMAT_VERSION = 3
#: Width / length of a ``box`` of this generator: a bar, far from the disc of a ``ball``.
BOX_ASPECT = (0.35, 0.55)
#: Extent of a thing as a fraction of the image side.
THING_SIZE = (0.35, 0.6)
_SPLITS = (('training', 'train', 0), ('validation', 'val', 1))

Shape = Tuple[int, int]
Colour = np.ndarray  # (3,) float64


# ---------------------------------------------------------------------------
# Colours and textures: (H, W) grids -> (H, W, 3) float images.
# ---------------------------------------------------------------------------
def _random_colour(rng: np.random.Generator, avoid: Sequence[Colour] = (),
                   min_dist: float = 90.0) -> Colour:
    """Draw a colour at least ``min_dist`` (Euclidean, 0-255 scale) from ``avoid``."""
    colour = rng.uniform(0, 255, size=3)
    for _ in range(100):
        if all(np.linalg.norm(colour - other) >= min_dist for other in avoid):
            break
        colour = rng.uniform(0, 255, size=3)
    return colour


def _rotated_coords(shape: Shape, angle: float,
                    centre: Tuple[float, float] = (0.0, 0.0)) -> Tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates rotated by ``angle`` (radians) about ``centre``.

    Returns:
        ``(u, v)``, each of shape (H, W): coordinates along and across the
        direction ``angle``.
    """
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    dx, dy = xs + 0.5 - centre[0], ys + 0.5 - centre[1]
    cos, sin = np.cos(angle), np.sin(angle)
    return dx * cos + dy * sin, -dx * sin + dy * cos


def _two_colour(pattern: np.ndarray,
                rng: np.random.Generator) -> Tuple[np.ndarray, List[Colour]]:
    """Blend two distinct random colours with a weight map (H, W) in [0, 1].

    Returns:
        The (H, W, 3) float image and its two colours.
    """
    first = _random_colour(rng)
    colours = [first, _random_colour(rng, [first])]
    weight = pattern[..., None]
    return (1.0 - weight) * colours[0] + weight * colours[1], colours


def stripes_texture(shape: Shape, rng: np.random.Generator) -> Tuple[np.ndarray, List[Colour]]:
    """Straight two-colour stripes of random orientation and period ("wall").

    Args:
        shape: Image size ``(H, W)``.
        rng: Random generator.

    Returns:
        Float image of shape (H, W, 3) in [0, 255] and its two colours.
    """
    side = min(shape)
    period = rng.uniform(0.06, 0.11) * side
    u, _ = _rotated_coords(shape, rng.uniform(0, np.pi))
    pattern = ((u + rng.uniform(0, period)) % period < period / 2).astype(np.float64)
    return _two_colour(pattern, rng)


def checker_texture(shape: Shape, rng: np.random.Generator) -> Tuple[np.ndarray, List[Colour]]:
    """A two-colour checkerboard of random cell size and rotation ("floor").

    Args:
        shape: Image size ``(H, W)``.
        rng: Random generator.

    Returns:
        Float image of shape (H, W, 3) in [0, 255] and its two colours.
    """
    side = min(shape)
    cell = rng.uniform(0.06, 0.11) * side
    u, v = _rotated_coords(shape, rng.uniform(0, np.pi / 2))
    u, v = u + rng.uniform(0, cell), v + rng.uniform(0, cell)
    pattern = ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float64)
    return _two_colour(pattern, rng)


def cloud_texture(shape: Shape, rng: np.random.Generator) -> Tuple[np.ndarray, List[Colour]]:
    """Smooth low-frequency noise between two colours ("sky").

    Args:
        shape: Image size ``(H, W)``.
        rng: Random generator.

    Returns:
        Float image of shape (H, W, 3) in [0, 255] and its two colours.
    """
    grid = rng.uniform(0, 1, size=(5, 5)).astype(np.float32)
    noise = cv2.resize(grid, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    noise = (noise - noise.min()) / max(float(noise.max() - noise.min()), 1e-6)
    return _two_colour(noise.astype(np.float64), rng)


#: Texture painter of every stuff class.
STUFF_TEXTURES: Dict[int, Callable[[Shape, np.random.Generator],
                                   Tuple[np.ndarray, List[Colour]]]] = {
    0: stripes_texture,
    2: cloud_texture,
    3: checker_texture,
}


# ---------------------------------------------------------------------------
# Shapes: boolean masks (H, W) of one object.
# ---------------------------------------------------------------------------
def shape_mask(label: int, shape: Shape, centre: Tuple[float, float], size: float,
               angle: float, rng: np.random.Generator,
               box_aspect: Tuple[float, float] = (0.6, 1.0)) -> np.ndarray:
    """Rasterise the shape of thing class ``label``.

    ``ball`` is a disc, ``plate`` a ring, ``box`` a rectangle, ``tent`` an
    equilateral triangle and ``signboard`` a plus sign.

    Args:
        label: 0-based ADE20K index, one of :data:`THING_CLASSES`.
        shape: Image size ``(H, W)``.
        centre: Object centre ``(x, y)`` in pixels.
        size: Object extent (diameter / side) in pixels.
        angle: Rotation in radians.
        rng: Random generator for the per-shape proportions.
        box_aspect: Range of a rectangle's width / length (the COCO-layout
            generator keeps the default; the ADE20K one draws bars,
            :data:`BOX_ASPECT`).

    Returns:
        Boolean mask of shape (H, W).
    """
    u, v = _rotated_coords(shape, angle, centre)
    half = size / 2
    if label == 119:  # ball: disc
        return u**2 + v**2 <= half**2
    if label == 142:  # plate: ring
        radius = np.sqrt(u**2 + v**2)
        return (radius <= half) & (radius >= half * rng.uniform(0.45, 0.6))
    if label == 41:  # box: rectangle
        return (np.abs(u) <= half) & (np.abs(v) <= half * rng.uniform(*box_aspect))
    if label == 43:  # signboard: plus sign
        arm = half * rng.uniform(0.3, 0.4)
        return (((np.abs(u) <= half) & (np.abs(v) <= arm))
                | ((np.abs(u) <= arm) & (np.abs(v) <= half)))
    if label == 114:  # tent: equilateral triangle, side about 1.2 * size
        inradius = 0.35 * size
        mask = np.ones(shape, dtype=bool)
        for k in range(3):
            phi = np.pi / 2 + 2 * np.pi * k / 3
            mask &= -(u * np.cos(phi) + v * np.sin(phi)) <= inradius
        return mask
    raise ValueError(f'{label} is not a synthetic thing class')


def _split_regions(shape: Shape, rng: np.random.Generator,
                   band: float) -> Tuple[np.ndarray, np.ndarray]:
    """Cut the image by a random line or wavy curve through its central half.

    Returns:
        ``(second, boundary)``: boolean masks (H, W) of the second region and
        of the band of width ``band`` pixels along the cut.
    """
    height, width = shape
    centre = (rng.uniform(0.25, 0.75) * width, rng.uniform(0.25, 0.75) * height)
    along, across = _rotated_coords(shape, rng.uniform(0, np.pi), centre)
    if rng.random() < 0.5:  # a wave instead of a straight line
        period = rng.uniform(0.5, 1.5) * min(shape)
        amplitude = rng.uniform(0.03, 0.1) * min(shape)
        across = across + amplitude * np.sin(2 * np.pi * along / period + rng.uniform(0, 6.3))
    return across > 0, np.abs(across) < band / 2


# ---------------------------------------------------------------------------
# One sample.
# ---------------------------------------------------------------------------
def _place_thing(shape: Shape, rng: np.random.Generator, taken: np.ndarray,
                 attempts: int = 20) -> Optional[Tuple[int, np.ndarray]]:
    """Draw a random thing that does not overlap the pixels in ``taken``.

    Each attempt draws a class, a centre in the central 70 % of the image, a
    size of 35-60 % of the image side and a rotation; the first shape that
    stays clear of ``taken`` is returned (touching is allowed).

    Args:
        shape: Image size ``(H, W)``.
        rng: Random generator.
        taken: Boolean mask (H, W) of the things already drawn.
        attempts: Draws before giving up.

    Returns:
        ``(label, mask)`` with the 0-based ADE20K index and the boolean mask
        (H, W), or None when every attempt overlapped.
    """
    side = min(shape)
    thing_ids = list(THING_CLASSES)
    for _ in range(attempts):
        thing = int(rng.choice(thing_ids))
        centre = (rng.uniform(0.15, 0.85) * shape[1], rng.uniform(0.15, 0.85) * shape[0])
        mask = shape_mask(thing, shape, centre, rng.uniform(*THING_SIZE) * side,
                          rng.uniform(0, 2 * np.pi), rng, box_aspect=BOX_ASPECT)
        if not (mask & taken).any():
            return thing, mask
    return None


def render_sample(img_size: Shape, rng: np.random.Generator,
                  boundary_width: float = 2.0) -> Tuple[np.ndarray, np.ndarray]:
    """Draw one image and its ADE20K-style annotation.

    Args:
        img_size: ``(H, W)``.
        rng: Random generator; the output is a pure function of its state.
        boundary_width: Width in pixels of the "other" band between stuff regions.

    Returns:
        ``(image, annotation)``: ``uint8`` image (H, W, 3) (BGR order, as
        written by OpenCV) and ``uint8`` annotation (H, W) with 0 = other and
        ADE20K index ``k`` stored as ``k + 1``.
    """
    shape = (int(img_size[0]), int(img_size[1]))
    stuff_ids = list(STUFF_CLASSES)
    num_regions = 1 if rng.random() < 0.15 else 2
    regions = [int(c) for c in rng.choice(stuff_ids, size=num_regions, replace=False)]

    image, stuff_colours = STUFF_TEXTURES[regions[0]](shape, rng)
    label = np.full(shape, regions[0] + 1, dtype=np.uint8)
    if num_regions == 2:
        second, boundary = _split_regions(shape, rng, boundary_width)
        texture, colours = STUFF_TEXTURES[regions[1]](shape, rng)
        image[second] = texture[second]
        stuff_colours += colours
        label[second] = regions[1] + 1
        label[boundary] = 0

    taken = np.zeros(shape, dtype=bool)
    for _ in range(int(rng.integers(1, 4))):
        placed = _place_thing(shape, rng, taken)
        if placed is None:
            continue
        thing, mask = placed
        taken |= mask
        image[mask] = _random_colour(rng, stuff_colours, min_dist=80.0)
        label[mask] = thing + 1

    image = image + rng.normal(0.0, 3.0, size=image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), label


# ---------------------------------------------------------------------------
# The dataset on disk.
# ---------------------------------------------------------------------------
def _file_stems(prefix: str, count: int) -> List[str]:
    return [f'ADE_{prefix}_{i + 1:08d}' for i in range(count)]


def _expected_files(root: str, counts: Dict[str, int]) -> List[str]:
    files = []
    for split, prefix, _ in _SPLITS:
        for stem in _file_stems(prefix, counts.get(split, 0)):
            files.append(osp.join(root, 'images', split, stem + '.jpg'))
            files.append(osp.join(root, 'annotations', split, stem + '.png'))
    return files


def read_generator_meta(root: str, format_name: str = FORMAT_NAME) -> Optional[dict]:
    """The ``meta.json`` a synthetic-data generator left in ``root``, or None.

    Args:
        root: Dataset root.
        format_name: The generator's format; a meta file of another format
            (or none, or an unreadable one) gives None.
    """
    path = osp.join(root, 'meta.json')
    if not osp.isfile(path):
        return None
    try:
        with open(path, encoding='utf-8') as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get('format') == format_name else None


def _clear_previous(root: str, meta: Optional[dict]) -> None:
    """Remove a previous synthetic dataset; refuse to touch anything else."""
    if meta is None:
        for split, _, _ in _SPLITS:
            for sub in ('images', 'annotations'):
                folder = osp.join(root, sub, split)
                if osp.isdir(folder) and os.listdir(folder):
                    raise FileExistsError(
                        f'{folder} is not empty and {root} holds no synthetic-dataset '
                        'meta.json; refusing to overwrite it, choose an empty folder')
        return
    os.remove(osp.join(root, 'meta.json'))
    counts = meta.get('params', {})
    for path in _expected_files(root, {'training': counts.get('num_train', 0),
                                       'validation': counts.get('num_val', 0)}):
        if osp.isfile(path):
            os.remove(path)


def _class_statistics(hist: np.ndarray) -> dict:
    """Summarise a 256-bin histogram of stored annotation values."""
    total = max(int(hist.sum()), 1)
    return {
        'ignore_fraction': float(hist[0]) / total,
        'class_pixel_fraction': {
            name: float(hist[idx + 1]) / total for idx, name in SYNTHETIC_CLASSES.items()
        },
    }


def _validate(num_train: int, num_val: int, img_size: Shape, seed: int) -> None:
    if num_train < 0 or num_val < 0:
        raise ValueError(f'image counts must be >= 0, got {num_train} and {num_val}')
    if num_train + num_val == 0:
        raise ValueError('at least one image must be generated')
    if min(img_size) < 32:
        raise ValueError(f'img_size must be at least 32 pixels per side, got {img_size}')
    if seed < 0:
        raise ValueError(f'seed must be >= 0, got {seed}')


#: Called as ``progress(split, done, total)`` while a split is written.
ProgressFn = Callable[[str, int, int], None]


def print_progress(split: str, done: int, total: int) -> None:
    """A :data:`ProgressFn` that prints ``  split: done/total images``."""
    print(f'  {split}: {done}/{total} images', flush=True)


def report_progress(progress: Optional[ProgressFn], split: str, done: int, total: int,
                    every: int = 500) -> None:
    """Call ``progress`` after every ``every`` images of a split and after its last one."""
    if progress is not None and (done % every == 0 or done == total):
        progress(split, done, total)


def generate_synthetic_ade20k(root: str,
                              num_train: int = 6000,
                              num_val: int = 100,
                              img_size: Union[int, Tuple[int, int]] = 128,
                              seed: int = 0,
                              jpeg_quality: int = 95,
                              progress: Optional[ProgressFn] = None) -> dict:
    """Write (or reuse) the synthetic dataset under ``root`` in the ADE20K layout.

    Generation is skipped when ``root/meta.json`` records the same parameters and
    every file is present; otherwise a previous synthetic dataset in ``root`` is
    replaced. A non-empty ADE20K-style folder without our ``meta.json`` is never
    overwritten.

    Args:
        root: Dataset root (created if missing).
        num_train: Number of images in ``training``.
        num_val: Number of images in ``validation``.
        img_size: Image size, an int or ``(H, W)``.
        seed: Random seed; equal seeds give identical files.
        jpeg_quality: JPEG quality of the images (0-100).
        progress: Called as ``progress(split, done, total)`` after every 500
            images of a split and after its last one (not when reusing).

    Returns:
        Summary dict with ``root``, ``params``, ``classes`` (ADE20K index ->
        name), ``splits`` (per split: ``num_images``, ``ignore_fraction`` and
        ``class_pixel_fraction`` by class name) and ``generated`` (False when
        an existing dataset was reused).

    Raises:
        ValueError: On invalid parameters.
        FileExistsError: If ``root`` holds foreign images or annotations.
    """
    size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    _validate(num_train, num_val, size, seed)
    params = dict(num_train=int(num_train), num_val=int(num_val), img_size=[int(s) for s in size],
                  seed=int(seed), jpeg_quality=int(jpeg_quality))
    counts = {'training': params['num_train'], 'validation': params['num_val']}
    meta = read_generator_meta(root)
    if (meta is not None and meta.get('version') == FORMAT_VERSION
            and meta.get('params') == params
            and all(osp.isfile(p) for p in _expected_files(root, counts))):
        return dict(meta['summary'], root=root, generated=False)

    _clear_previous(root, meta)
    splits = {}
    for split, prefix, split_code in _SPLITS:
        img_dir, ann_dir = osp.join(root, 'images', split), osp.join(root, 'annotations', split)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        hist = np.zeros(256, dtype=np.int64)
        for index, stem in enumerate(_file_stems(prefix, counts[split])):
            rng = np.random.default_rng([seed, split_code, index])
            image, label = render_sample(size, rng)
            hist += np.bincount(label.ravel(), minlength=256)
            if not cv2.imwrite(osp.join(img_dir, stem + '.jpg'), image,
                               [cv2.IMWRITE_JPEG_QUALITY, params['jpeg_quality']]):
                raise OSError(f'could not write {osp.join(img_dir, stem)}.jpg')
            if not cv2.imwrite(osp.join(ann_dir, stem + '.png'), label):
                raise OSError(f'could not write {osp.join(ann_dir, stem)}.png')
            report_progress(progress, split, index + 1, counts[split])
        splits[split] = dict(num_images=counts[split], **_class_statistics(hist))

    summary = dict(root=root, params=params,
                   classes={str(k): v for k, v in SYNTHETIC_CLASSES.items()}, splits=splits)
    with open(osp.join(root, 'meta.json'), 'w', encoding='utf-8') as f:
        json.dump(dict(format=FORMAT_NAME, version=FORMAT_VERSION, params=params,
                       summary=summary), f, indent=2)
    return dict(summary, generated=True)
