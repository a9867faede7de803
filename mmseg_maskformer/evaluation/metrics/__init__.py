"""mmengine metrics registered in the ``mmseg_maskformer`` scope."""
from .instance_metric import CocoInstanceMetric, label_to_annotation_index
from .panoptic_metric import (PanopticQualityMetric, assemble_partial_annotations,
                              panoptic_to_coco)
from .semantic_metric import AtomicIoUMetric

__all__ = [
    'AtomicIoUMetric',
    'CocoInstanceMetric', 'label_to_annotation_index', 'PanopticQualityMetric',
    'panoptic_to_coco', 'assemble_partial_annotations'
]
