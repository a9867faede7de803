"""Constants and encodings of the COCO panoptic format.

A COCO panoptic PNG stores one segment id per pixel as RGB:
``id = R + 256 * G + 256 ** 2 * B``; id ``0`` (``VOID``) marks unlabelled pixels.
"""
from typing import Union

import numpy as np

#: Segment id of unlabelled ("void") pixels in COCO panoptic PNGs.
VOID = 0
#: Encoding of a (ground-truth id, prediction id) pair in one integer, as the
#: COCO panoptic API does: ``gt_id * OFFSET + pred_id``.
OFFSET = 256 * 256 * 256
#: In-memory panoptic maps of predictions store ``label + instance_id * INSTANCE_OFFSET``
#: (the mmdet convention); ``label == num_classes`` marks void pixels.
INSTANCE_OFFSET = 1000


def rgb2id(color: np.ndarray) -> Union[np.ndarray, int]:
    """Decode RGB-encoded segment ids.

    Args:
        color: ``uint8``/int array (..., 3) in RGB order, or a 3-sequence.

    Returns:
        ``int64`` array (...) of ids, or an ``int`` for a single colour.
    """
    if isinstance(color, np.ndarray) and color.ndim >= 2:
        if color.shape[-1] != 3:
            raise ValueError(f'expected (..., 3) RGB values, got shape {color.shape}')
        color = color.astype(np.int64)
        return color[..., 0] + 256 * color[..., 1] + 256 * 256 * color[..., 2]
    r, g, b = (int(c) for c in color)
    return r + 256 * g + 256 * 256 * b


def id2rgb(id_map: Union[np.ndarray, int]) -> np.ndarray:
    """Encode segment ids as RGB.

    Args:
        id_map: Non-negative integer array (...) or a single id (< 256 ** 3).

    Returns:
        ``uint8`` array (..., 3) in RGB order (a (3,) array for a single id).
    """
    ids = np.asarray(id_map, dtype=np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= OFFSET):
        raise ValueError(f'segment ids must lie in [0, {OFFSET}), got '
                         f'[{ids.min()}, {ids.max()}]')
    rgb = np.empty(ids.shape + (3, ), dtype=np.uint8)
    for channel in range(3):
        rgb[..., channel] = ids % 256
        ids = ids // 256
    return rgb
