"""Datasets and data transforms."""
from .ade20k_full import ADE20K_FULL_CLASSES, ADE20KFullDataset, Load16BitAnnotations
from .cityscapes_panoptic import CityscapesPanopticDataset
from .coco_instance import CheckedCocoDataset
from .panoptic import PanopticFormatDataset, categories_to_metainfo
from .synthetic import SYNTHETIC_CLASSES, generate_synthetic_ade20k
from .synthetic_coco import SYNTHETIC_COCO_CATEGORIES, generate_synthetic_coco
from .transforms import (GenerateMaskTargets, LoadPanopticTargets, PackMaskFormerInputs,
                         panoptic_to_targets, semantic_to_mask_targets)

__all__ = [
    'SYNTHETIC_CLASSES', 'generate_synthetic_ade20k', 'GenerateMaskTargets',
    'PackMaskFormerInputs', 'semantic_to_mask_targets', 'PanopticFormatDataset',
    'categories_to_metainfo', 'LoadPanopticTargets', 'panoptic_to_targets',
    'SYNTHETIC_COCO_CATEGORIES', 'generate_synthetic_coco', 'ADE20K_FULL_CLASSES',
    'ADE20KFullDataset', 'Load16BitAnnotations', 'CheckedCocoDataset', 'CityscapesPanopticDataset'
]
