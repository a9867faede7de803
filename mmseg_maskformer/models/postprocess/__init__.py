"""Post-processing of mask-classification outputs into task predictions."""
from .instance import instance_inference, masks_to_boxes
from .panoptic import panoptic_inference
from .semantic import resize_to_original, semantic_inference, semantic_labels

__all__ = [
    'semantic_inference', 'semantic_labels', 'resize_to_original', 'panoptic_inference',
    'instance_inference', 'masks_to_boxes'
]
