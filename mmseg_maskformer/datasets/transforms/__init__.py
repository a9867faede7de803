"""Data transforms for mask-classification segmentation."""
from .formatting import PackMaskFormerInputs
from .targets import GenerateMaskTargets, semantic_to_mask_targets

__all__ = ['GenerateMaskTargets', 'PackMaskFormerInputs', 'semantic_to_mask_targets']
