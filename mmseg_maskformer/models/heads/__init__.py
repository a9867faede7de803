"""Heads: pixel decoder + transformer decoder + loss, one module per algorithm."""
from .mask2former_head import Mask2FormerDecodeHead
from .maskformer_head import MaskFormerDecodeHead

__all__ = ['Mask2FormerDecodeHead', 'MaskFormerDecodeHead']
