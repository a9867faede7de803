"""Checkpoint converters: official Detectron2, Hugging Face, torchvision and
Swin releases into this toolbox's key names (pure functions on state dicts)."""
from .common import ConversionResult, apply_rules, checkpoint_dict, compare_with_model, to_tensor

__all__ = ['ConversionResult', 'apply_rules', 'checkpoint_dict', 'compare_with_model',
           'to_tensor']
from .backbones import (caffe2_resnet_to_mmseg, detectron2_resnet_to_mmseg,  # noqa: E402
                        patch_merging_from_mmseg, patch_merging_to_mmseg, swin_official_to_mmseg,
                        torchvision_resnet_to_mmseg)

__all__ += ['caffe2_resnet_to_mmseg', 'detectron2_resnet_to_mmseg', 'patch_merging_from_mmseg',
            'patch_merging_to_mmseg', 'swin_official_to_mmseg', 'torchvision_resnet_to_mmseg']
from .detectron2 import (convert_detectron2, convert_detectron2_backbone,  # noqa: E402
                         load_detectron2_checkpoint)

__all__ += ['convert_detectron2', 'convert_detectron2_backbone', 'load_detectron2_checkpoint']
from .huggingface import convert_huggingface  # noqa: E402
from .huggingface_config import config_from_huggingface  # noqa: E402

__all__ += ['convert_huggingface', 'config_from_huggingface']
from .mmdet import (mask2former_peer_config, mmdet_to_ours_mask2former,  # noqa: E402
                    ours_to_mmdet_mask2former)

__all__ += ['mask2former_peer_config', 'mmdet_to_ours_mask2former', 'ours_to_mmdet_mask2former']
from .mmdet_checkpoint import convert_mmdet_mask2former  # noqa: E402
from .sssegmentation import convert_sssegmentation_maskformer  # noqa: E402

__all__ += ['convert_mmdet_mask2former', 'convert_sssegmentation_maskformer']
