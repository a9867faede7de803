"""Version of mmseg_maskformer."""
__version__ = '0.1.0'
