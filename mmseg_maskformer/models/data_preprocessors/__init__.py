"""Data preprocessors: normalise, pad and batch model inputs."""
from .data_preprocessor import (MaskFormerDataPreprocessor, batch_pad_shape,
                                pad_bottom_right, pad_instance_masks)

__all__ = [
    'MaskFormerDataPreprocessor', 'batch_pad_shape', 'pad_bottom_right', 'pad_instance_masks'
]
