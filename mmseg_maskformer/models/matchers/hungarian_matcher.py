"""One-to-one matching of predicted masks to ground-truth masks.

Cost = ``w_cls * class + w_mask * sigmoid-CE + w_dice * dice``, with the mask
terms evaluated on ``num_points`` points drawn uniformly in the image (the same
points for predictions and targets), then solved with the Hungarian algorithm
(scipy, on CPU).

Non-finite costs (NaN or Inf logits, e.g. after a bad step in mixed
precision) never reach the solver: they are replaced by a cost larger than
every finite one, so the assignment stays valid and prefers clean queries.
Each matcher counts the images and cost entries concerned and logs a warning
for the 1st, 2nd, 4th, 8th, ... such image, so a diverged run does not flood
the log.
"""
from typing import Optional, Tuple, Union

import torch
from mmengine.logging import print_log
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from mmseg_maskformer.registry import TASK_UTILS
from ..layers.factored_masks import FactoredMasks, logits_of, masks_at_points
from ..losses.mask_losses import (pairwise_class_cost, pairwise_dice_cost, pairwise_focal_cost,
                                  pairwise_sigmoid_ce_cost, stable_cost_matrix)


@TASK_UTILS.register_module()
class HungarianPointMatcher:
    """Hungarian matcher on sampled points (Mask2Former) or full masks (MaskFormer).

    Args:
        cls_weight: Weight of the class cost.
        mask_weight: Weight of the mask cost (sigmoid CE, or focal).
        dice_weight: Weight of the dice cost.
        num_points: Points sampled per image; 0 compares full masks after
            resizing the targets to the prediction size.
        mask_cost: ``'sigmoid_ce'`` (Mask2Former) or ``'focal'`` (MaskFormer).

    Attributes:
        num_nonfinite_images: Matched images whose cost matrix held NaN/Inf.
        num_nonfinite_costs: Non-finite cost entries replaced, in total.
    """

    def __init__(self,
                 cls_weight: float = 2.0,
                 mask_weight: float = 5.0,
                 dice_weight: float = 5.0,
                 num_points: int = 12544,
                 mask_cost: str = 'sigmoid_ce') -> None:
        if mask_cost not in ('sigmoid_ce', 'focal'):
            raise ValueError(f"mask_cost must be 'sigmoid_ce' or 'focal', got {mask_cost!r}")
        if cls_weight == 0 and mask_weight == 0 and dice_weight == 0:
            raise ValueError('all matching cost weights are 0')
        self.cls_weight = cls_weight
        self.mask_weight = mask_weight
        self.dice_weight = dice_weight
        self.num_points = num_points
        self.mask_cost = mask_cost
        self.num_nonfinite_images = 0
        self.num_nonfinite_costs = 0

    def cost_matrix(self, cls_logits: Tensor, mask_logits: Union[Tensor, FactoredMasks],
                    gt_labels: Tensor,
                    gt_masks: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """Matching cost between all predictions and all targets of one image.

        Args:
            cls_logits: Class logits, shape (Q, K + 1).
            mask_logits: Mask logits, shape (Q, H, W), or one image's
                :class:`FactoredMasks` (only the sampled points are formed).
            gt_labels: Target classes, shape (N,).
            gt_masks: Target masks, shape (N, Hg, Wg), any dtype with {0, 1}.
            generator: Optional random generator for the points.

        Returns:
            Cost matrix, shape (Q, N), fp32.
        """
        with torch.autocast(device_type=mask_logits.device.type, enabled=False):
            gt_masks = gt_masks.to(torch.float32)
            mask_logits = mask_logits.float()
            if self.num_points > 0:
                points = torch.rand(1, self.num_points, 2, device=mask_logits.device,
                                    generator=generator)
                pred = masks_at_points(mask_logits, points)
                tgt = masks_at_points(gt_masks, points)
            else:
                tgt = torch.nn.functional.interpolate(
                    gt_masks[:, None], size=mask_logits.shape[-2:], mode='nearest')[:, 0]
                pred, tgt = logits_of(mask_logits).flatten(1), tgt.flatten(1)
            mask_fn = pairwise_sigmoid_ce_cost if self.mask_cost == 'sigmoid_ce' \
                else pairwise_focal_cost
            cost = (self.cls_weight * pairwise_class_cost(cls_logits, gt_labels) +
                    self.mask_weight * mask_fn(pred, tgt) +
                    self.dice_weight * pairwise_dice_cost(pred, tgt))
        return cost

    @torch.no_grad()
    def match(self, cls_logits: Tensor, mask_logits: Union[Tensor, FactoredMasks],
              gt_labels: Tensor, gt_masks: Tensor,
              generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
        """Match one image's predictions to its targets.

        Args:
            cls_logits: Class logits, shape (Q, K + 1).
            mask_logits: Mask logits, shape (Q, H, W), or one image's
                :class:`FactoredMasks` (only the sampled points are formed).
            gt_labels: Target classes, shape (N,).
            gt_masks: Target masks, shape (N, Hg, Wg).
            generator: Optional random generator for the points.

        Returns:
            tuple: matched prediction indices and target indices, each (min(Q, N),),
            int64 on the predictions' device, sorted by prediction index.
        """
        device = cls_logits.device
        if gt_labels.numel() == 0:
            empty = torch.empty(0, dtype=torch.long, device=device)
            return empty, empty.clone()
        cost = self.sanitize(self.cost_matrix(cls_logits, mask_logits, gt_labels, gt_masks,
                                              generator))
        pred_idx, gt_idx = linear_sum_assignment(cost.cpu().numpy())
        return (torch.as_tensor(pred_idx, dtype=torch.long, device=device),
                torch.as_tensor(gt_idx, dtype=torch.long, device=device))

    def sanitize(self, cost: Tensor) -> Tensor:
        """Replace non-finite costs (see :func:`stable_cost_matrix`), count and report them.

        Args:
            cost: Cost matrix, shape (Q, N).

        Returns:
            A finite cost matrix of the same shape (``cost`` itself when finite).
        """
        bad = int((~torch.isfinite(cost)).sum())
        if bad == 0:
            return cost
        self.num_nonfinite_images += 1
        self.num_nonfinite_costs += bad
        count = self.num_nonfinite_images
        if count & (count - 1) == 0:  # a power of two: 1, 2, 4, 8, ...
            print_log(f'HungarianPointMatcher: {bad} of {cost.numel()} matching costs are '
                      'NaN/Inf (non-finite logits); replaced by a large finite cost. So far '
                      f'{self.num_nonfinite_costs} non-finite costs in {count} images '
                      '(logged for the 1st, 2nd, 4th, 8th, ... such image)',
                      logger='current', level=30)
        return stable_cost_matrix(cost)
