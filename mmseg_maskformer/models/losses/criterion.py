"""Set-prediction loss of MaskFormer / Mask2Former.

For every prediction layer: match queries to ground-truth segments, then
* classification: cross-entropy over K + 1 classes for all queries (unmatched
  ones target "no object", down-weighted by ``no_object_weight``);
* masks: on matched pairs only, either on ``num_points`` importance-sampled
  points (Mask2Former: sigmoid CE + dice) or on full-resolution masks
  (MaskFormer: focal + dice).
Losses of the intermediate layers are reported as ``d{i}.loss_*``.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine import dist
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmseg_maskformer.registry import MODELS, TASK_UTILS
from ..layers import point_sample, sample_uncertain_points
from ..layers.factored_masks import (FactoredMasks, matched_logits, matched_logits_of_layers,
                                     share_features)
from .mask_losses import dice_loss, sigmoid_ce_loss, sigmoid_focal_loss


def _normaliser(batch_gt_instances: Sequence[InstanceData], device: torch.device) -> float:
    """Average number of target masks per process, at least 1."""
    num = torch.as_tensor([float(sum(len(g.labels) for g in batch_gt_instances))],
                          device=device)
    if dist.get_world_size() > 1:
        dist.all_reduce(num, op='mean')
    return max(num.item(), 1.0)


@MODELS.register_module()
class MaskFormerCriterion(nn.Module):
    """Matching + classification + mask losses over all prediction layers.

    Args:
        num_classes: Number of classes K.
        matcher: Config of the matcher (e.g. ``HungarianPointMatcher``).
        cls_weight: Weight of the classification loss.
        mask_weight: Weight of the mask loss (sigmoid CE or focal).
        dice_weight: Weight of the dice loss.
        no_object_weight: Class weight of "no object".
        class_weight: Optional per-class weights, length K + 1 (the last one is
            "no object"); overrides ``no_object_weight``.
        mask_loss: ``'sigmoid_ce'`` or ``'focal'``.
        num_points: Points per mask for the point loss; 0 = full masks.
        oversample_ratio: Candidate over-sampling of the importance sampling.
        importance_sample_ratio: Share of points taken by uncertainty.
        deep_supervision: Also supervise the intermediate predictions.
    """

    def __init__(self,
                 num_classes: int,
                 matcher: dict,
                 cls_weight: float = 2.0,
                 mask_weight: float = 5.0,
                 dice_weight: float = 5.0,
                 no_object_weight: float = 0.1,
                 class_weight: Optional[Sequence[float]] = None,
                 mask_loss: str = 'sigmoid_ce',
                 num_points: int = 12544,
                 oversample_ratio: float = 3.0,
                 importance_sample_ratio: float = 0.75,
                 deep_supervision: bool = True) -> None:
        super().__init__()
        if mask_loss not in ('sigmoid_ce', 'focal'):
            raise ValueError(f"mask_loss must be 'sigmoid_ce' or 'focal', got {mask_loss!r}")
        self.num_classes = num_classes
        self.matcher = TASK_UTILS.build(matcher) if isinstance(matcher, dict) else matcher
        self.cls_weight = cls_weight
        self.mask_weight = mask_weight
        self.dice_weight = dice_weight
        self.mask_loss = mask_loss
        self.num_points = num_points
        self.oversample_ratio = oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio
        self.deep_supervision = deep_supervision
        if class_weight is None:
            weight = torch.ones(num_classes + 1)
            weight[-1] = no_object_weight
        else:
            if len(class_weight) != num_classes + 1:
                raise ValueError(
                    f'class_weight has {len(class_weight)} entries but num_classes={num_classes}'
                    f' needs {num_classes + 1} (one per class plus "no object" last); fix '
                    'class_weight or num_classes so they agree')
            weight = torch.as_tensor(class_weight, dtype=torch.float32)
        self.register_buffer('empty_weight', weight, persistent=False)

    def forward(self, cls_preds: List[Tensor], mask_preds: List[Union[Tensor, FactoredMasks]],
                batch_gt_instances: Sequence[InstanceData]) -> Dict[str, Tensor]:
        """Compute all losses.

        Args:
            cls_preds: Class logits of each prediction layer, each (B, Q, K + 1);
                the last entry is the final prediction.
            mask_preds: Mask logits of each layer, each (B, Q, h, w), or
                :class:`FactoredMasks` of that shape: the matcher then forms
                the logits at its points only and the mask losses those of the
                matched queries only.
            batch_gt_instances: Per image ``labels`` (N_b,) and ``masks``
                (N_b, H, W), masks padded to the batch input size.

        Returns:
            dict of weighted scalar losses.
        """
        for gt in batch_gt_instances:
            if len(gt.labels) and int(gt.labels.max()) >= self.num_classes:
                raise ValueError(f'ground-truth label {int(gt.labels.max())} is out of range '
                                 f'for num_classes={self.num_classes}')
        num_masks = _normaliser(batch_gt_instances, cls_preds[-1].device)
        layers = list(range(len(cls_preds))) if self.deep_supervision else [len(cls_preds) - 1]
        # every layer is matched first, so that factored masks sharing their features
        # form the matched logits of all layers in one product (matched_logits_of_layers)
        indices = [self.match(cls_preds[i], mask_preds[i], batch_gt_instances) for i in layers]
        sources = self._matched_sources([mask_preds[i] for i in layers], indices)
        losses: Dict[str, Tensor] = {}
        last = len(cls_preds) - 1
        for i, layer_indices, src in zip(layers, indices, sources):
            prefix = '' if i == last else f'd{i}.'
            layer_losses = self.layer_loss(cls_preds[i], mask_preds[i], batch_gt_instances,
                                           num_masks, layer_indices, src)
            losses.update({prefix + k: v for k, v in layer_losses.items()})
        return losses

    def match(self, cls_pred: Tensor, mask_pred: Union[Tensor, FactoredMasks],
              batch_gt_instances: Sequence[InstanceData]) -> List[Tuple[Tensor, Tensor]]:
        """Matched (prediction, target) indices of one layer, per image."""
        return [
            self.matcher.match(cls_pred[b], mask_pred[b], gt.labels, gt.masks)
            for b, gt in enumerate(batch_gt_instances)
        ]

    @staticmethod
    def _matched_sources(mask_preds: Sequence[Union[Tensor, FactoredMasks]],
                         indices: Sequence[List[Tuple[Tensor, Tensor]]]) -> List[Optional[Tensor]]:
        """Matched logits of every layer from one product when their factors allow it.

        Returns a list of None (each layer forms its own) unless all layers are
        batched :class:`FactoredMasks` over the same features.
        """
        if not share_features(mask_preds):
            return [None] * len(mask_preds)
        return matched_logits_of_layers(mask_preds,
                                        [[p for p, _ in layer] for layer in indices])

    def layer_loss(self, cls_pred: Tensor, mask_pred: Union[Tensor, FactoredMasks],
                   batch_gt_instances: Sequence[InstanceData], num_masks: float,
                   indices: List[Tuple[Tensor, Tensor]],
                   src: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Losses of one prediction layer (see :meth:`forward` for shapes).

        ``indices``: the layer's matches (:meth:`match`); ``src``: its matched
        logits, as :func:`matched_logits` gives them, or None to form them here.
        """
        loss_cls = self.cls_weight * self.class_loss(cls_pred, batch_gt_instances, indices)
        loss_mask, loss_dice = self.mask_losses(mask_pred, batch_gt_instances, indices,
                                                num_masks, src)
        return dict(loss_cls=loss_cls, loss_mask=self.mask_weight * loss_mask,
                    loss_dice=self.dice_weight * loss_dice)

    def class_loss(self, cls_pred: Tensor, batch_gt_instances: Sequence[InstanceData],
                   indices: List[Tuple[Tensor, Tensor]]) -> Tensor:
        """Weighted cross-entropy; unmatched queries target "no object".

        The weighted mean divides by the sum of the target weights. That sum is
        averaged over the processes (as the mask-count normaliser is), so N
        processes with batch B give the gradient of one process with batch N*B;
        in one process this is ``F.cross_entropy(..., weight)``.
        """
        target = torch.full(cls_pred.shape[:2], self.num_classes, dtype=torch.long,
                            device=cls_pred.device)
        for b, (pred_idx, gt_idx) in enumerate(indices):
            target[b, pred_idx] = batch_gt_instances[b].labels[gt_idx]
        weight = self.empty_weight.to(cls_pred.device)
        per_query = F.cross_entropy(cls_pred.float().transpose(1, 2), target, reduction='none')
        target_weight = weight[target]
        total = target_weight.sum().detach()
        if dist.get_world_size() > 1:
            dist.all_reduce(total, op='mean')
        return (target_weight * per_query).sum() / total.clamp(min=torch.finfo(total.dtype).tiny)

    def mask_losses(self, mask_pred: Union[Tensor, FactoredMasks],
                    batch_gt_instances: Sequence[InstanceData],
                    indices: List[Tuple[Tensor, Tensor]],
                    num_masks: float, src: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Mask (sigmoid CE or focal) and dice losses on matched pairs.

        ``src``: the matched logits when already formed (see :meth:`forward`).
        """
        if src is None:
            src = matched_logits(mask_pred, [p for p, _ in indices])
        if src.shape[0] == 0:
            zero = src.float().sum() * 0.0  # fp32 like the other losses, keeps the graph
            return zero, zero.clone()
        tgt = torch.cat(
            [batch_gt_instances[b].masks[g] for b, (_, g) in enumerate(indices)]).to(src.dtype)
        if self.num_points > 0:
            with torch.no_grad():
                points = sample_uncertain_points(src[:, None].float(), self.num_points,
                                                 self.oversample_ratio,
                                                 self.importance_sample_ratio)
                tgt_points = point_sample(tgt[:, None].float(), points)[:, 0]
            src_points = point_sample(src[:, None], points)[:, 0]
        else:
            src_points = F.interpolate(src[:, None], size=tgt.shape[-2:], mode='bilinear',
                                       align_corners=False)[:, 0].flatten(1)
            tgt_points = tgt.flatten(1)
        mask_fn = sigmoid_ce_loss if self.mask_loss == 'sigmoid_ce' else sigmoid_focal_loss
        return (mask_fn(src_points, tgt_points, num_masks),
                dice_loss(src_points, tgt_points, num_masks))
