"""Evaluation: metric maths (``functional``) and mmengine metrics (``metrics``)."""
from . import functional  # noqa: F401
from .metrics import CocoInstanceMetric, PanopticQualityMetric

__all__ = ['CocoInstanceMetric', 'PanopticQualityMetric']
