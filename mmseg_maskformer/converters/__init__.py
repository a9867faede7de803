"""Checkpoint converters into this toolbox's key names (pure functions on state dicts).

Sources: official Detectron2 MaskFormer / Mask2Former checkpoints, Hugging Face
transformers models, mmdetection / mmsegmentation Mask2Former checkpoints,
sssegmentation MaskFormer checkpoints (in part), and ImageNet backbones
(torchvision, the official Swin releases, Detectron2 / Caffe2 ResNets).
"""
from .backbones import (caffe2_resnet_to_mmseg, detectron2_resnet_to_mmseg,
                        patch_merging_from_mmseg, patch_merging_to_mmseg, swin_official_to_mmseg,
                        torchvision_resnet_to_mmseg)
from .common import (ConversionResult, apply_rules, checkpoint_dict,
                     compare_with_model, fit_and_save, fit_problems, save_checkpoint_atomic,
                     to_tensor, unwrap_state_dict)
from .detectron2 import (convert_detectron2, convert_detectron2_backbone,
                         load_detectron2_checkpoint)
from .huggingface import convert_huggingface
from .huggingface_config import config_from_huggingface
from .mmdet import mask2former_peer_config, mmdet_to_ours_mask2former, ours_to_mmdet_mask2former
from .mmdet_checkpoint import convert_mmdet_mask2former
from .sssegmentation import convert_sssegmentation_maskformer

__all__ = [
    'ConversionResult', 'apply_rules', 'checkpoint_dict',
    'compare_with_model', 'fit_and_save', 'fit_problems', 'save_checkpoint_atomic', 'to_tensor',
    'unwrap_state_dict',
    'caffe2_resnet_to_mmseg', 'detectron2_resnet_to_mmseg', 'patch_merging_from_mmseg',
    'patch_merging_to_mmseg', 'swin_official_to_mmseg', 'torchvision_resnet_to_mmseg',
    'convert_detectron2', 'convert_detectron2_backbone', 'load_detectron2_checkpoint',
    'convert_huggingface', 'config_from_huggingface', 'mask2former_peer_config',
    'mmdet_to_ours_mask2former', 'ours_to_mmdet_mask2former', 'convert_mmdet_mask2former',
    'convert_sssegmentation_maskformer'
]
