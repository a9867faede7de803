"""mmseg's ``IoUMetric`` with atomically written prediction PNGs and a clear empty case.

What the numbers mean for classes that are rare in the test set (mmseg's rules,
unchanged): a class absent from the ground truth of every evaluated image has
``Acc = nan`` (no pixel to recall) and ``IoU = nan`` when it is also never
predicted (0/0) but ``IoU = 0`` when it is predicted somewhere. ``mIoU`` and
``mAcc`` are the means over the non-nan entries, so absent classes neither help
nor hurt; the per-class table prints them as ``nan`` (set ``nan_to_num`` to
print a number instead, which then enters the means).
"""
import os
import os.path as osp
from typing import Any, Dict, List, Sequence

import numpy as np
from mmseg.evaluation import IoUMetric

from mmseg_maskformer.evaluation.functional import atomic_save_png
from mmseg_maskformer.registry import METRICS


@METRICS.register_module()
class AtomicIoUMetric(IoUMetric):
    """``IoUMetric`` whose ``output_dir`` PNGs are complete or absent.

    Each prediction PNG is written to a temporary file and renamed, so an
    interrupted test run leaves only complete files, and every image done
    before the interruption has its file. Arguments and metrics are those of
    mmseg's ``IoUMetric``; ``tools/test.py --out`` uses this class in its place.

    Raises:
        ValueError: In ``compute_metrics``, when no image was evaluated
            (mmseg fails with a bare ``AssertionError``).
    """

    def process(self, data_batch: Any, data_samples: Sequence[Dict[str, Any]]) -> None:
        """Accumulate the areas of each sample and write its PNG (see mmseg's ``IoUMetric``)."""
        output_dir, self.output_dir = self.output_dir, None
        try:
            super().process(data_batch, data_samples)
        finally:
            self.output_dir = output_dir
        if output_dir is None:
            return
        os.makedirs(output_dir, exist_ok=True)
        for sample in data_samples:
            pred = sample['pred_sem_seg']['data'].squeeze().cpu().numpy()
            if sample.get('reduce_zero_label', False):
                pred = pred + 1  # back to the dataset's own label values
            name = osp.splitext(osp.basename(sample['img_path']))[0] + '.png'
            atomic_save_png(osp.join(output_dir, name), pred.astype(np.uint8))

    def compute_metrics(self, results: List[Any]) -> Dict[str, float]:
        """mmseg's metrics; a clear error when no image was evaluated."""
        if not results and not self.format_only:
            raise ValueError(f'{type(self).__name__}: no image was evaluated (empty test '
                             'dataset?); IoU is undefined without images')
        return super().compute_metrics(results)
