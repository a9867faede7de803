"""Converters from raw dataset releases to the formats our datasets read.

One module per release: ``ade20k_panoptic`` (its functions are also exported here),
``ade20k_full``, ``semantic_labels`` (COCO-Stuff-10K, Cityscapes, COCO semantic).
"""
from . import ade20k_full, semantic_labels
from .ade20k_panoptic import (ADE20K_SEM_SEG_CATEGORIES, ade20k_instance_categories,
                              ade20k_panoptic_categories, convert_split,
                              instances_from_annotation, panoptic_from_annotations)

__all__ = [
    'ade20k_full', 'semantic_labels',
    'ADE20K_SEM_SEG_CATEGORIES', 'ade20k_panoptic_categories', 'ade20k_instance_categories',
    'panoptic_from_annotations', 'instances_from_annotation', 'convert_split'
]
