"""Segmentors."""
from .maskformer import MaskFormerSegmentor

__all__ = ['MaskFormerSegmentor']
