"""Backbones: faster versions of mmseg's, with their parameter names."""
from .swin import SwinTransformerSDPA

__all__ = ['SwinTransformerSDPA']
