"""Data transforms for mask-classification segmentation."""
from .checks import CheckSegMap, seg_map_problem
from .formatting import PackMaskFormerInputs
from .loading import LoadPanopticTargets, panoptic_to_targets
from .targets import GenerateMaskTargets, semantic_to_mask_targets

__all__ = [
    'CheckSegMap', 'seg_map_problem', 'GenerateMaskTargets', 'LoadPanopticTargets',
    'PackMaskFormerInputs', 'panoptic_to_targets', 'semantic_to_mask_targets'
]
