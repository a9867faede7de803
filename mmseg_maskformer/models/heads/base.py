"""Training and inference entry points shared by the mask-classification heads."""
from typing import Dict, List, Sequence, Tuple

from mmseg.structures import SegDataSample
from torch import Tensor


def check_feature_channels(feats: Sequence[Tensor], in_channels: Sequence[int],
                           head: str) -> None:
    """Reject backbone outputs whose number or widths differ from the head's ``in_channels``.

    Args:
        feats: Backbone outputs the head received, fine to coarse (after
            ``in_index``), each (B, C_i, H_i, W_i).
        in_channels: The head's configured ``in_channels``.
        head: Class name of the head, for the message.

    Raises:
        ValueError: Saying which config keys to change.
    """
    channels: List[int] = [int(f.shape[1]) for f in feats]
    expected = [int(c) for c in in_channels]
    if channels != expected:
        raise ValueError(
            f'{head} got feature maps with channels {channels} but in_channels is {expected} '
            '(fine to coarse, after in_index): the backbone does not produce what the head '
            f'expects; set model.decode_head.in_channels={channels}, or change the backbone '
            '(e.g. its out_indices / widths) or model.decode_head.in_index')


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
        cls_preds, mask_preds = self.loss_predictions(feats)
        return self.criterion(cls_preds, mask_preds, [ds.gt_instances for ds in data_samples])

    def loss_predictions(self, feats: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        """All layers' predictions for the criterion (``forward`` unless overridden)."""
        return self(feats)

    def predict(self, feats: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
        """Final-layer predictions: class logits (B, Q, K + 1), masks (B, Q, H/4, W/4)."""
        cls_preds, mask_preds = self(feats)
        return cls_preds[-1], mask_preds[-1]
