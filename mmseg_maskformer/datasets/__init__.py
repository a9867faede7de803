"""Datasets and data transforms."""
from .synthetic import SYNTHETIC_CLASSES, generate_synthetic_ade20k
from .transforms import GenerateMaskTargets, PackMaskFormerInputs, semantic_to_mask_targets

__all__ = [
    'SYNTHETIC_CLASSES', 'generate_synthetic_ade20k', 'GenerateMaskTargets',
    'PackMaskFormerInputs', 'semantic_to_mask_targets'
]
