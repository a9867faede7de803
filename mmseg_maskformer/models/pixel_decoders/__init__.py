"""Pixel decoders: backbone features -> per-pixel embeddings + multi-scale memory."""
from .msdeformattn_pixel_decoder import MultiScaleDeformablePixelDecoder

__all__ = ['MultiScaleDeformablePixelDecoder']
