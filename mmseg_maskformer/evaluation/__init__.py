"""Evaluation: metric maths (``functional``) and mmengine metrics (``metrics``)."""
from . import functional  # noqa: F401
from .metrics import AtomicIoUMetric, CocoInstanceMetric, PanopticQualityMetric

__all__ = ['AtomicIoUMetric', 'CocoInstanceMetric', 'PanopticQualityMetric']
