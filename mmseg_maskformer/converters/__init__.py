"""Checkpoint converters: official Detectron2, Hugging Face, torchvision and
Swin releases into this toolbox's key names (pure functions on state dicts)."""
from .common import ConversionResult, apply_rules, checkpoint_dict, compare_with_model, to_tensor

__all__ = ['ConversionResult', 'apply_rules', 'checkpoint_dict', 'compare_with_model',
           'to_tensor']
