"""Pixel decoders: backbone features -> per-pixel embeddings + multi-scale memory."""
from .base import PixelDecoderOutput
from .fpn_pixel_decoder import FPNPixelDecoder
from .msdeformattn_pixel_decoder import MultiScaleDeformablePixelDecoder
from .transformer_encoder_pixel_decoder import TransformerEncoderPixelDecoder

__all__ = [
    'PixelDecoderOutput', 'FPNPixelDecoder', 'TransformerEncoderPixelDecoder',
    'MultiScaleDeformablePixelDecoder'
]
