"""Models of mmseg_maskformer; importing registers them."""
from . import (backbones, data_preprocessors, decoders, heads, layers, losses, matchers,  # noqa: F401
               pixel_decoders, postprocess, segmentors)
from .heads import Mask2FormerDecodeHead, MaskFormerDecodeHead
from .losses import MaskFormerCriterion
from .matchers import HungarianPointMatcher
from .pixel_decoders import (FPNPixelDecoder, MultiScaleDeformablePixelDecoder,
                             TransformerEncoderPixelDecoder)
from .segmentors import MaskFormerSegmentor

__all__ = [
    'MaskFormerSegmentor', 'Mask2FormerDecodeHead', 'MaskFormerDecodeHead',
    'MultiScaleDeformablePixelDecoder', 'FPNPixelDecoder', 'TransformerEncoderPixelDecoder',
    'HungarianPointMatcher', 'MaskFormerCriterion'
]
