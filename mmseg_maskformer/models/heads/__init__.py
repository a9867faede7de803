"""Heads: pixel decoder + transformer decoder + loss, one module per algorithm."""
from .mask2former_head import Mask2FormerDecodeHead
from .maskformer_head import MaskFormerDecodeHead
from .per_pixel_baseline import PerPixelBaselineHead, PerPixelBaselinePlusHead

__all__ = [
    'Mask2FormerDecodeHead', 'MaskFormerDecodeHead', 'PerPixelBaselineHead',
    'PerPixelBaselinePlusHead'
]
