"""Post-processing of mask-classification outputs into task predictions."""
from .semantic import resize_to_original, semantic_inference

__all__ = ['semantic_inference', 'resize_to_original']
