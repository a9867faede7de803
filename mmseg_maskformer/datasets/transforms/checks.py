"""Load-time checks of ground truth: bad data fails with the file named, never silently."""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.logging import print_log

from mmseg_maskformer.registry import TRANSFORMS


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
        message = f"{results.get('seg_map_path', '<unknown file>')}: {problem}"
        if not self.skip_invalid:
            raise ValueError(message)
        print_log(f'skipped: {message}', logger='current', level=30)
        return None

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index}, skip_invalid={self.skip_invalid})')
