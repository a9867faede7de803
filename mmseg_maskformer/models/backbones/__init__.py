"""Backbones: faster versions of mmseg's, with their arguments and parameter names."""
from .resnet import ResNetFoldedBN
from .swin import SwinTransformerSDPA

__all__ = ['ResNetFoldedBN', 'SwinTransformerSDPA']
