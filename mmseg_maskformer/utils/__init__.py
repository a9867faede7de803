"""Small shared helpers."""
from .atomic_files import (atomic_open, atomic_save_image, atomic_save_png,
                           atomic_write_json)
from .panoptic import INSTANCE_OFFSET, OFFSET, VOID, id2rgb, rgb2id

__all__ = [
    'INSTANCE_OFFSET', 'OFFSET', 'VOID', 'id2rgb', 'rgb2id', 'atomic_open', 'atomic_save_image',
    'atomic_save_png', 'atomic_write_json'
]
