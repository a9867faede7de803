"""Training and inference entry points shared by the mask-classification heads."""
from typing import Dict, Sequence, Tuple

from mmseg.structures import SegDataSample
from torch import Tensor


class MaskClassificationHeadMixin:
    """``loss`` and ``predict`` of a head whose ``forward(feats)`` returns per-layer
    class logits, each (B, Q, K + 1), and mask logits, each (B, Q, H/4, W/4), the
    last entries final; the head owns a ``criterion``.
    """

    def loss(self, feats: Sequence[Tensor],
             data_samples: Sequence[SegDataSample]) -> Dict[str, Tensor]:
        """Training losses; each sample needs ``gt_instances`` (labels, masks)."""
        for ds in data_samples:
            if 'gt_instances' not in ds:
                raise KeyError(f'{type(self).__name__}.loss needs data_samples with '
                               'gt_instances: load mask targets in the training pipeline '
                               '(GenerateMaskTargets for semantic maps, LoadPanopticTargets '
                               "or mmdet's LoadAnnotations(with_mask=True)) before "
                               'PackMaskFormerInputs')
        cls_preds, mask_preds = self(feats)
        return self.criterion(cls_preds, mask_preds, [ds.gt_instances for ds in data_samples])

    def predict(self, feats: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
        """Final-layer predictions: class logits (B, Q, K + 1), masks (B, Q, H/4, W/4)."""
        cls_preds, mask_preds = self(feats)
        return cls_preds[-1], mask_preds[-1]
