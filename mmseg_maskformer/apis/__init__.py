"""User-facing entry points: :func:`init_model` and :func:`inference_model`."""
from .inference import build_inference_pipeline, inference_model, init_model

__all__ = ['build_inference_pipeline', 'inference_model', 'init_model']
