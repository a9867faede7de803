"""Small shared helpers."""
from .panoptic import INSTANCE_OFFSET, OFFSET, VOID, id2rgb, rgb2id

__all__ = ['INSTANCE_OFFSET', 'OFFSET', 'VOID', 'id2rgb', 'rgb2id']
