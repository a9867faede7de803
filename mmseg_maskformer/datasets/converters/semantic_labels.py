"""Semantic label maps from raw releases: COCO-Stuff-10K, Cityscapes, COCO panoptic.

Each converter is a lookup table (LUT) from the raw label values to the
training ids our configs read, plus a function that converts one split and
reports what it did:

- COCO-Stuff-10K: ``annotations/*.mat`` (MATLAB ``S``: 0 = unlabelled, COCO
  ids 1..182 of which 171 are used) -> ``annotations/{train2014,test2014}/
  *_labelTrainIds.png`` with 0 = unlabelled and 1..171 the classes in COCO id
  order (``reduce_zero_label`` in ``COCOStuffDataset`` makes them 0..170, 255
  ignored), the layout of mmseg's converter;
- Cityscapes: ``gtFine/{split}/{city}/*_gtFine_labelIds.png`` (34 label ids)
  -> ``*_gtFine_labelTrainIds.png`` (19 train ids, 255 ignored) as
  cityscapesscripts' ``createTrainIdLabelImgs`` writes them;
- COCO panoptic -> semantic: the panoptic PNG + ``segments_info`` ->
  ``panoptic_semseg_{split}/*.png`` with contiguous ids 0..132 in the JSON's
  category order and 255 for void, as the official
  ``prepare_coco_semantic_annos_from_panoptic_annos.py`` (crowd segments keep
  their class).

Values a LUT does not know become the ignore value and are counted, never
passed through silently.
"""
import json
import os
import os.path as osp
import shutil
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from mmseg_maskformer.utils.atomic_files import atomic_open, atomic_save_png
from mmseg_maskformer.utils.panoptic import rgb2id
from ..coco_categories import coco_thing_categories
from ..transforms.loading import panoptic_to_targets

__all__ = [
    'COCO_STUFF_USED_IDS', 'CITYSCAPES_LABEL_TO_TRAIN_ID', 'coco_stuff10k_lut',
    'cityscapes_lut', 'apply_lut', 'convert_coco_stuff10k', 'convert_cityscapes',
    'semantic_from_panoptic', 'convert_coco_panoptic_semantic'
]

Progress = Optional[Callable[[int, int], None]]

#: COCO-Stuff ids present in the annotations: the 80 thing ids and stuff 92..182.
COCO_STUFF_USED_IDS: Tuple[int, ...] = tuple(
    sorted([cat['id'] for cat in coco_thing_categories()] + list(range(92, 183))))

#: Cityscapes label id -> train id (cityscapesscripts ``labels.py``; others 255).
CITYSCAPES_LABEL_TO_TRAIN_ID: Dict[int, int] = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11,
    25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18
}


def coco_stuff10k_lut() -> np.ndarray:
    """LUT (256,) uint8: raw COCO-Stuff value -> 0 (unlabelled) or 1..171.

    Unused ids map to 0 (unlabelled), so they are ignored after
    ``reduce_zero_label``.
    """
    lut = np.zeros(256, dtype=np.uint8)
    for train_id, coco_id in enumerate(COCO_STUFF_USED_IDS, start=1):
        lut[coco_id] = train_id
    return lut


def cityscapes_lut() -> np.ndarray:
    """LUT (256,) uint8: Cityscapes label id -> train id, 255 elsewhere."""
    lut = np.full(256, 255, dtype=np.uint8)
    for label_id, train_id in CITYSCAPES_LABEL_TO_TRAIN_ID.items():
        lut[label_id] = train_id
    return lut


def apply_lut(labels: np.ndarray, lut: np.ndarray, known: Iterable[int]) -> Tuple[np.ndarray, int]:
    """Maps a label map through a LUT.

    Args:
        labels: Raw labels (H, W), integer values in 0..255.
        lut: (256,) uint8 table.
        known: Raw values with a meaning (mapped or deliberately ignored).

    Returns:
        The mapped map (H, W) uint8 and the number of pixels whose raw value
        was not in ``known``.

    Raises:
        ValueError: If a value is outside 0..255.
    """
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError(f'label values must be in 0..255, got {labels.min()}..{labels.max()}')
    labels = labels.astype(np.int64)
    known_mask = np.zeros(256, dtype=bool)
    known_mask[list(known)] = True
    unknown = int((~known_mask[labels]).sum())
    return lut[labels], unknown


def _save_png(array: np.ndarray, path: str) -> None:
    """Writes a PNG atomically, creating its folder."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    atomic_save_png(path, array, fsync=False)


def _read_list(path: str) -> List[str]:
    if not osp.isfile(path):
        raise FileNotFoundError(f'image list {path} does not exist (expected in the raw '
                                'COCO-Stuff-10K release under imageLists/)')
    with open(path) as file:
        return [line.strip() for line in file if line.strip()]


def convert_coco_stuff10k(root: str, out_dir: Optional[str] = None,
                          progress: Progress = None) -> Dict[str, int]:
    """Converts the raw COCO-Stuff-10K release to mmseg's layout.

    Args:
        root: Raw release with ``images/*.jpg``, ``annotations/*.mat`` and
            ``imageLists/{train,test}.txt``.
        out_dir: Output root (default ``root``): ``images/{train2014,test2014}``
            (copies) and ``annotations/{train2014,test2014}/*_labelTrainIds.png``.
        progress: Called with (done, total).

    Returns:
        Counts: ``train``, ``test`` images and ``unknown_pixels`` (raw values
        that are not COCO-Stuff ids, written as unlabelled).
    """
    from scipy.io import loadmat
    out_dir = out_dir or root
    lut = coco_stuff10k_lut()
    known = (0, ) + COCO_STUFF_USED_IDS
    splits = {'train': _read_list(osp.join(root, 'imageLists', 'train.txt')),
              'test': _read_list(osp.join(root, 'imageLists', 'test.txt'))}
    total = sum(len(names) for names in splits.values())
    counts = dict(train=0, test=0, unknown_pixels=0)
    done = 0
    for split, names in splits.items():
        for name in names:
            image = osp.join(root, 'images', f'{name}.jpg')
            mat = osp.join(root, 'annotations', f'{name}.mat')
            for path in (image, mat):
                if not osp.isfile(path):
                    raise FileNotFoundError(f'{path} is listed in imageLists/{split}.txt '
                                            'but does not exist')
            raw = loadmat(mat)
            if 'S' not in raw:
                raise KeyError(f'{mat} has no label map "S" (keys: {sorted(raw)})')
            mapped, unknown = apply_lut(raw['S'], lut, known)
            counts['unknown_pixels'] += unknown
            out_image = osp.join(out_dir, 'images', f'{split}2014', f'{name}.jpg')
            if osp.abspath(out_image) != osp.abspath(image):
                os.makedirs(osp.dirname(out_image), exist_ok=True)
                with open(image, 'rb') as src, atomic_open(out_image, fsync=False) as dst:
                    shutil.copyfileobj(src, dst)
            _save_png(mapped, osp.join(out_dir, 'annotations', f'{split}2014',
                                       f'{name}_labelTrainIds.png'))
            counts[split] += 1
            done += 1
            if progress:
                progress(done, total)
    return counts


def convert_cityscapes(root: str, splits: Sequence[str] = ('train', 'val'),
                       progress: Progress = None) -> Dict[str, int]:
    """Writes ``*_gtFine_labelTrainIds.png`` next to every ``*_gtFine_labelIds.png``.

    Args:
        root: Cityscapes root with ``gtFine/{split}/{city}/``.
        splits: Splits to convert.
        progress: Called with (done, total).

    Returns:
        Counts per split and ``unknown_pixels`` (label ids outside 0..33 and
        -1, written as 255).
    """
    lut = cityscapes_lut()
    files: List[Tuple[str, str]] = []
    for split in splits:
        split_dir = osp.join(root, 'gtFine', split)
        if not osp.isdir(split_dir):
            raise FileNotFoundError(f'{split_dir} does not exist (gtFine_trainvaltest.zip '
                                    'extracted into the Cityscapes root)')
        for city in sorted(os.listdir(split_dir)):
            for name in sorted(os.listdir(osp.join(split_dir, city))):
                if name.endswith('_gtFine_labelIds.png'):
                    files.append((split, osp.join(split_dir, city, name)))
    counts: Dict[str, int] = {split: 0 for split in splits}
    counts['unknown_pixels'] = 0
    for done, (split, path) in enumerate(files, start=1):
        labels = np.asarray(Image.open(path))
        if labels.ndim != 2:
            raise ValueError(f'{path}: expected a single-channel label id PNG, got shape '
                             f'{labels.shape}')
        mapped, unknown = apply_lut(labels, lut, range(34))
        counts['unknown_pixels'] += unknown
        _save_png(mapped, path.replace('_gtFine_labelIds.png', '_gtFine_labelTrainIds.png'))
        counts[split] += 1
        if progress:
            progress(done, len(files))
    return counts


def semantic_from_panoptic(panoptic: np.ndarray, segments_info: Sequence[Mapping],
                           category_to_label: Mapping[int, int], where: str = '') -> np.ndarray:
    """One panoptic annotation as a semantic map.

    Args:
        panoptic: RGB panoptic PNG (H, W, 3) uint8.
        segments_info: The image's segments (``id``, ``category_id``).
        category_to_label: Category id -> contiguous label.
        where: File name for error messages.

    Returns:
        (H, W) uint8 labels, 255 where no segment is (void).

    Raises:
        ValueError: If a segment has an unknown category or the PNG holds an id
            that no segment describes (other than 0, void).
    """
    segments = []
    for segment in segments_info:
        category = segment['category_id']
        if category not in category_to_label:
            raise ValueError(f'{where}: segment {segment["id"]} has category_id {category}, '
                             'which is not in the categories of the annotation file')
        # crowd segments keep their class in the semantic map; no masks are needed
        segments.append(dict(id=segment['id'], label=category_to_label[category], iscrowd=True))
    _, _, semantic = panoptic_to_targets(rgb2id(panoptic), segments, ignore_index=255,
                                         source=where)
    return semantic


def convert_coco_panoptic_semantic(panoptic_json: str, panoptic_dir: str, out_dir: str,
                                   progress: Progress = None) -> Dict[str, int]:
    """Writes a semantic PNG for every image of a COCO panoptic annotation file.

    Args:
        panoptic_json: ``panoptic_{split}.json``.
        panoptic_dir: Folder of its PNGs.
        out_dir: Output folder (``panoptic_semseg_{split}`` officially).
        progress: Called with (done, total).

    Returns:
        ``images`` converted and ``classes`` (number of contiguous labels).
    """
    with open(panoptic_json) as file:
        data = json.load(file)
    category_to_label = {cat['id']: i for i, cat in enumerate(data['categories'])}
    if len(category_to_label) > 255:
        raise ValueError(f'{panoptic_json} has {len(category_to_label)} categories; uint8 '
                         'semantic PNGs hold at most 255 (255 is void)')
    annotations = data['annotations']
    for done, ann in enumerate(annotations, start=1):
        png = osp.join(panoptic_dir, ann['file_name'])
        if not osp.isfile(png):
            raise FileNotFoundError(f'{png} (annotation of image {ann["image_id"]} in '
                                    f'{panoptic_json}) does not exist')
        panoptic = np.asarray(Image.open(png).convert('RGB'))
        semantic = semantic_from_panoptic(panoptic, ann['segments_info'], category_to_label,
                                          where=png)
        _save_png(semantic, osp.join(out_dir, ann['file_name']))
        if progress:
            progress(done, len(annotations))
    return dict(images=len(annotations), classes=len(category_to_label))
