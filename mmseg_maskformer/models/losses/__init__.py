"""Losses of the MaskFormer family."""
from .criterion import MaskFormerCriterion
from .mask_losses import (dice_loss, pairwise_class_cost, pairwise_dice_cost, pairwise_focal_cost,
                          pairwise_sigmoid_ce_cost, sigmoid_ce_loss, sigmoid_focal_loss,
                          stable_cost_matrix)

__all__ = [
    'MaskFormerCriterion', 'dice_loss', 'sigmoid_ce_loss', 'sigmoid_focal_loss',
    'pairwise_class_cost', 'pairwise_dice_cost', 'pairwise_focal_cost',
    'pairwise_sigmoid_ce_cost', 'stable_cost_matrix'
]
