"""Data transforms for mask-classification segmentation."""
from .checks import (CheckedLoadAnnotations, CheckedLoadImageFromFile, CheckSegMap, image_bytes_problem,
                     read_image_checked, seg_map_problem)
from .formatting import PackMaskFormerInputs
from .loading import LoadPanopticTargets, panoptic_to_targets
from .targets import GenerateMaskTargets, semantic_to_mask_targets

__all__ = [
    'CheckedLoadAnnotations', 'CheckedLoadImageFromFile', 'CheckSegMap', 'image_bytes_problem', 'read_image_checked',
    'seg_map_problem', 'GenerateMaskTargets', 'LoadPanopticTargets',
    'PackMaskFormerInputs', 'panoptic_to_targets', 'semantic_to_mask_targets'
]
