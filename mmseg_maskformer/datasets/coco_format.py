"""COCO-format annotations derived from a panoptic segment-id map.

Pure functions shared by the synthetic COCO generator and conversion tools:
``segments_info`` with exact areas and boxes, uncompressed RLE, polygons that
pycocotools rasterises back to the same pixels, and instance annotations.
"""
from typing import AbstractSet, List, Sequence

import cv2
import numpy as np

from mmseg_maskformer.utils.panoptic import VOID

__all__ = [
    'check_annotation_categories',
    'mask_bbox', 'segments_info_from_id_map', 'mask_to_uncompressed_rle', 'mask_to_polygons',
    'instance_annotations'
]


def segments_info_from_id_map(id_map: np.ndarray, segments: Sequence[dict]) -> List[dict]:
    """Complete segments with their exact ``area`` and ``bbox`` in ``id_map``.

    Args:
        id_map: Integer segment ids (H, W), 0 = void.
        segments: ``{id, category_id, iscrowd}`` per segment.

    Returns:
        COCO ``segments_info`` entries ``{id, category_id, iscrowd, bbox, area}``
        (``bbox`` = ``[x, y, w, h]`` of the pixels), in the order of
        ``segments``, without segments that have no pixel.

    Raises:
        ValueError: If ``id_map`` holds an id not listed in ``segments``.
    """
    listed = {int(seg['id']) for seg in segments}
    unknown = set(np.unique(id_map).tolist()) - listed - {VOID}
    if unknown:
        raise ValueError(f'segment ids {sorted(unknown)} are not listed in segments')
    infos = []
    for seg in segments:
        mask = id_map == seg['id']
        area = int(mask.sum())
        if not area:
            continue
        infos.append(dict(id=int(seg['id']), category_id=int(seg['category_id']),
                          iscrowd=int(seg['iscrowd']), bbox=mask_bbox(mask), area=area))
    return infos


def mask_bbox(mask: np.ndarray) -> List[int]:
    """COCO ``[x, y, w, h]`` of the pixels of a non-empty boolean mask (H, W)."""
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    return [x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1]


def mask_to_uncompressed_rle(mask: np.ndarray) -> dict:
    """Encode a mask as COCO uncompressed RLE.

    Args:
        mask: Boolean mask (H, W).

    Returns:
        ``{"counts": [...], "size": [H, W]}``: alternating run lengths of 0s and
        1s (starting with 0s) in column-major order, as ``pycocotools`` expects.
    """
    flat = np.asarray(mask, dtype=bool).ravel(order='F')
    bounds = np.concatenate([[0], np.flatnonzero(flat[1:] != flat[:-1]) + 1, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return dict(counts=[int(c) for c in counts], size=[int(s) for s in mask.shape])


def mask_to_polygons(mask: np.ndarray) -> List[List[float]]:
    """Trace a mask as COCO polygons (flat ``[x0, y0, x1, y1, ...]`` lists).

    The mask is traced with ``cv2.findContours`` at twice the resolution, so
    every vertex lies a quarter pixel inside the pixel boundary and every
    pixel centre falls on the correct side. Holes (e.g. of a ring) are spliced
    into their outer polygon through a zero-width cut (the cut is traversed
    once in each direction), so the even-odd filling of ``pycocotools``
    reproduces them.

    Args:
        mask: Boolean mask (H, W).

    Returns:
        One polygon (at least 4 vertices) per connected outer boundary, in
        pixel coordinates where pixel ``(x, y)`` covers ``[x, x + 1) x [y, y + 1)``.
    """
    upsampled = np.repeat(np.repeat(np.asarray(mask, dtype=np.uint8), 2, axis=0), 2, axis=1)
    contours, hierarchy = cv2.findContours(upsampled, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    links = hierarchy[0]  # (N, 4): next, previous, first child, parent
    polygons = []
    for index, contour in enumerate(contours):
        if links[index][3] != -1:
            continue
        outer = contour.reshape(-1, 2)
        points = [outer]
        child = links[index][2]
        while child != -1:
            hole = contours[child].reshape(-1, 2)
            points += [outer[:1], hole, hole[:1]]
            child = links[child][0]
        xy = (np.concatenate(points).astype(np.float64) + 0.5) / 2
        polygons.append([float(v) for v in xy.ravel()])
    return polygons


def instance_annotations(id_map: np.ndarray, segments_info: Sequence[dict], image_id: int,
                         first_id: int, thing_ids: AbstractSet[int]) -> List[dict]:
    """COCO instance annotations of the thing segments of one image.

    Args:
        id_map: Integer segment ids (H, W).
        segments_info: The image's panoptic ``segments_info``.
        image_id: COCO image id.
        first_id: Annotation id of the first thing; the following are consecutive.
        thing_ids: Category ids of the thing classes.

    Returns:
        ``{id, image_id, category_id, segmentation, area, bbox, iscrowd}`` per
        thing: polygons for ``iscrowd=0`` and uncompressed RLE for ``iscrowd=1``,
        as in COCO; ``area`` and ``bbox`` equal the panoptic ones.
    """
    annotations = []
    for seg in segments_info:
        if seg['category_id'] not in thing_ids:
            continue
        mask = id_map == seg['id']
        segmentation = mask_to_uncompressed_rle(mask) if seg['iscrowd'] else mask_to_polygons(mask)
        annotations.append(dict(id=first_id + len(annotations), image_id=image_id,
                                category_id=seg['category_id'], segmentation=segmentation,
                                area=seg['area'], bbox=list(seg['bbox']), iscrowd=seg['iscrowd']))
    return annotations


def check_annotation_categories(dataset: dict, source: str) -> None:
    """Reject a COCO instance file whose annotations use undeclared categories.

    mmdet's ``CocoDataset`` silently drops such annotations and pycocotools
    leaves them out of every category's evaluation.

    Args:
        dataset: The loaded JSON (``images``, ``annotations``, ``categories``).
        source: File name used in the error.

    Raises:
        ValueError: Naming the file, the annotation, the image (id and file
            name) and the category id.
    """
    known = {cat['id'] for cat in dataset.get('categories', [])}
    file_names = {image.get('id'): image.get('file_name') for image in dataset.get('images', [])}
    for ann in dataset.get('annotations', []):
        if ann.get('category_id') not in known:
            image_id = ann.get('image_id')
            raise ValueError(f'{source}: annotation {ann.get("id")!r} of image {image_id!r} '
                             f'({file_names.get(image_id)}) has category_id '
                             f'{ann.get("category_id")!r}, which is not in categories')
