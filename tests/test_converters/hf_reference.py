"""Test helpers: tiny random Hugging Face MaskFormer / Mask2Former references.

* builders of tiny ``transformers`` models (eval mode, every parameter and
  buffer randomised so that identity-initialised weights cannot hide a mapping
  error);
* :func:`hf_to_detectron2`: the Detectron2 -> Hugging Face key mapping of the
  ``transformers`` conversion scripts (``convert_mask2former_original_pytorch_
  checkpoint_to_pytorch.py``, ``convert_maskformer_original_pytorch_checkpoint_
  to_pytorch.py`` and its ResNet variant) applied in reverse, which gives
  synthetic checkpoints with the exact official key names and shapes.
"""
import re
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn
from transformers import (Mask2FormerConfig, Mask2FormerForUniversalSegmentation,
                          MaskFormerConfig, MaskFormerForInstanceSegmentation, ResNetConfig,
                          SwinConfig)
from transformers.models.maskformer.configuration_maskformer_swin import MaskFormerSwinConfig
from transformers.models.resnet.modeling_resnet import ResNetConvLayer

from mmseg_maskformer.converters.huggingface import to_hub_layout

STAGES = ['stage1', 'stage2', 'stage3', 'stage4']
NUM_LABELS = 7
# Window 2 keeps every stage of a 96 x 128 input (down to 3 x 4 at 1/32) larger
# than the window: Hugging Face's Swin shrinks the window and drops the shift
# of stages not larger than it, which the official Swin (and mmseg's) never does.
SWIN = dict(embed_dim=16, depths=[1, 1, 2, 1], num_heads=[1, 2, 2, 4], window_size=2,
            out_features=STAGES, drop_path_rate=0.0)


def resnet_config(depths: Sequence[int] = (3, 4, 6, 3), base: int = 4,
                  stem: int = 16) -> ResNetConfig:
    """A narrow bottleneck ResNet (``hidden_sizes = 4 * base * 2**s``)."""
    return ResNetConfig(embedding_size=stem, hidden_sizes=[4 * base * 2**s for s in range(4)],
                        depths=list(depths), layer_type='bottleneck', out_features=STAGES)


def mask2former_config(backbone: Any) -> Mask2FormerConfig:
    """Tiny Mask2Former: 32-wide, 2 encoder layers, 3 masked-attention layers, 6 queries."""
    return Mask2FormerConfig(backbone_config=backbone, feature_size=32, mask_feature_size=32,
                             hidden_dim=32, encoder_layers=2, decoder_layers=4, num_queries=6,
                             encoder_feedforward_dim=64, dim_feedforward=64,
                             num_attention_heads=4, num_labels=NUM_LABELS,
                             id2label={i: f'class_{i}' for i in range(NUM_LABELS)})


def maskformer_config(backbone: Any) -> MaskFormerConfig:
    """Tiny MaskFormer: 32-wide FPN, 2 DETR decoder layers, 6 queries."""
    decoder = dict(model_type='detr', d_model=32, encoder_layers=1, decoder_layers=2,
                   decoder_ffn_dim=64, decoder_attention_heads=4, num_queries=6)
    return MaskFormerConfig(backbone_config=backbone, decoder_config=decoder,
                            fpn_feature_size=32, mask_feature_size=32, num_labels=NUM_LABELS,
                            id2label={i: f'class_{i}' for i in range(NUM_LABELS)})


@torch.no_grad()
def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Perturbs every floating parameter and buffer (norms and biases included).

    Norm scales become ``1 + N(0, 0.1)``, BatchNorm running statistics random
    (variance in ``[0.5, 1.5]``), everything else gets noise of 10% of its
    standard deviation (0.05 for constant tensors such as zero biases).
    """
    gen = torch.Generator().manual_seed(seed)
    for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        if not tensor.is_floating_point():
            continue
        noise = torch.randn(tensor.shape, generator=gen)
        if name.endswith('running_var'):
            tensor.copy_(0.5 + torch.rand(tensor.shape, generator=gen))
        elif name.endswith('running_mean'):
            tensor.copy_(0.1 * noise)
        else:
            std = float(tensor.std()) if tensor.numel() > 1 else 0.0
            tensor.add_(noise * (0.1 * std if std > 1e-6 else 0.05))
    return model.eval()


def use_deep_stem(model: nn.Module, stem_channels: int) -> None:
    """Replaces the ResNet stem of a Hugging Face model by Detectron2's DeepLab stem.

    Three 3x3 conv+BN+ReLU (``3 -> C/2`` stride 2, ``C/2 -> C/2``, ``C/2 -> C``),
    followed by the existing max pool, as Detectron2's ``R-103`` (R101c).
    """
    embeddings = model.model.pixel_level_module.encoder.embedder
    half = stem_channels // 2
    embeddings.embedder = nn.Sequential(
        ResNetConvLayer(3, half, kernel_size=3, stride=2),
        ResNetConvLayer(half, half, kernel_size=3),
        ResNetConvLayer(half, stem_channels, kernel_size=3))


def dilate_last_stage(model: nn.Module, multi_grid: Sequence[int]) -> None:
    """Dilates the 3x3 convs of the last ResNet stage by ``multi_grid`` (stride kept)."""
    stage = model.model.pixel_level_module.encoder.encoder.stages[-1]
    for block, rate in zip(stage.layers, multi_grid):
        conv = block.layer[1].convolution
        conv.dilation, conv.padding = (rate, rate), (rate, rate)


def build(config: Any, seed: int = 0) -> nn.Module:
    """A randomised Hugging Face model of ``config`` in eval mode."""
    torch.manual_seed(seed)
    cls = (Mask2FormerForUniversalSegmentation if isinstance(config, Mask2FormerConfig) else
           MaskFormerForInstanceSegmentation)
    return randomize_(cls(config), seed)


def maskformer_swin_backbone() -> MaskFormerSwinConfig:
    """The tiny Swin of a MaskFormer (``maskformer-swin``)."""
    return MaskFormerSwinConfig(**SWIN)


def swin_backbone() -> SwinConfig:
    """The tiny Swin of a Mask2Former."""
    return SwinConfig(**SWIN)


# --------------------------------------------------------------- Detectron2 names

_W = r'(weight|bias)'
_BN = r'(weight|bias|running_mean|running_var)'


def _swin_to_d2() -> List[Tuple[str, str]]:
    """Hub-layout Hugging Face Swin (prefix removed) -> Detectron2 ``backbone.`` keys."""
    block = r'encoder\.layers\.(\d+)\.blocks\.(\d+)\.'
    out = r'backbone.layers.\1.blocks.\2.'
    return [
        (rf'embeddings\.patch_embeddings\.projection\.{_W}', r'backbone.patch_embed.proj.\1'),
        (rf'embeddings\.norm\.{_W}', r'backbone.patch_embed.norm.\1'),
        (rf'{block}layernorm_before\.{_W}', out + r'norm1.\3'),
        (rf'{block}layernorm_after\.{_W}', out + r'norm2.\3'),
        (rf'{block}attention\.self\.relative_position_bias_table',
         out + 'attn.relative_position_bias_table'),
        (rf'{block}attention\.output\.dense\.{_W}', out + r'attn.proj.\3'),
        (rf'{block}intermediate\.dense\.{_W}', out + r'mlp.fc1.\3'),
        (rf'{block}output\.dense\.{_W}', out + r'mlp.fc2.\3'),
        (rf'encoder\.layers\.(\d+)\.downsample\.(reduction|norm)\.{_W}',
         r'backbone.layers.\1.downsample.\2.\3'),
    ] + [(rf'hidden_states_norms\.stage{i + 1}\.{_W}', rf'backbone.norm{i}.\1') for i in range(4)]


def _resnet_to_d2() -> List[Tuple[str, str]]:
    """Hugging Face ResNet (prefix removed) -> Detectron2 ``backbone.`` keys."""
    rules = [
        (r'embedder\.embedder\.convolution\.weight', 'backbone.stem.conv1.weight'),
        (rf'embedder\.embedder\.normalization\.{_BN}', r'backbone.stem.conv1.norm.\1'),
    ]
    for k in range(3):  # deep stem (use_deep_stem)
        rules += [(rf'embedder\.embedder\.{k}\.convolution\.weight',
                   f'backbone.stem.conv{k + 1}.weight'),
                  (rf'embedder\.embedder\.{k}\.normalization\.{_BN}',
                   f'backbone.stem.conv{k + 1}.norm.' + r'\1')]
    for s in range(4):
        unit = rf'encoder\.stages\.{s}\.layers\.(\d+)\.'
        res = f'backbone.res{s + 2}.' + r'\1.'
        rules += [(rf'{unit}shortcut\.convolution\.weight', res + 'shortcut.weight'),
                  (rf'{unit}shortcut\.normalization\.{_BN}', res + r'shortcut.norm.\2')]
        rules += [(rf'{unit}layer\.{k}\.convolution\.weight', res + f'conv{k + 1}.weight')
                  for k in range(3)]
        rules += [(rf'{unit}layer\.{k}\.normalization\.{_BN}', res + f'conv{k + 1}.norm.' + r'\2')
                  for k in range(3)]
    return rules


def _mask2former_head_to_d2() -> List[Tuple[str, str]]:
    """Hugging Face Mask2Former head (fused self-attention) -> ``sem_seg_head.`` keys."""
    pix, tr = r'model\.pixel_level_module\.decoder\.', r'model\.transformer_module\.'
    pd, pr = 'sem_seg_head.pixel_decoder.', 'sem_seg_head.predictor.'
    enc, dec = rf'{pix}encoder\.layers\.(\d+)\.', rf'{tr}decoder\.layers\.(\d+)\.'
    return [
        (rf'{pix}input_projections\.(\d+)\.([01])\.{_W}', pd + r'input_proj.\1.\2.\3'),
        (rf'{pix}level_embed', pd + 'transformer.level_embed'),
        (rf'{enc}self_attn\.(\w+)\.{_W}', pd + r'transformer.encoder.layers.\1.self_attn.\2.\3'),
        (rf'{enc}self_attn_layer_norm\.{_W}', pd + r'transformer.encoder.layers.\1.norm1.\2'),
        (rf'{enc}final_layer_norm\.{_W}', pd + r'transformer.encoder.layers.\1.norm2.\2'),
        (rf'{enc}fc([12])\.{_W}', pd + r'transformer.encoder.layers.\1.linear\2.\3'),
        (rf'{pix}mask_projection\.{_W}', pd + r'mask_features.\1'),
        (rf'{pix}(adapter_1|layer_1)\.0\.weight', pd + r'\1.weight'),
        (rf'{pix}(adapter_1|layer_1)\.1\.{_W}', pd + r'\1.norm.\2'),
        (rf'{tr}queries_embedder\.weight', pr + 'query_embed.weight'),
        (rf'{tr}queries_features\.weight', pr + 'query_feat.weight'),
        (rf'{tr}level_embed\.weight', pr + 'level_embed.weight'),
        (rf'{dec}self_attn\.(in_proj_weight|in_proj_bias)',
         pr + r'transformer_self_attention_layers.\1.self_attn.\2'),
        (rf'{dec}self_attn\.out_proj\.{_W}',
         pr + r'transformer_self_attention_layers.\1.self_attn.out_proj.\2'),
        (rf'{dec}self_attn_layer_norm\.{_W}', pr + r'transformer_self_attention_layers.\1.norm.\2'),
        (rf'{dec}cross_attn\.(in_proj_weight|in_proj_bias)',
         pr + r'transformer_cross_attention_layers.\1.multihead_attn.\2'),
        (rf'{dec}cross_attn\.out_proj\.{_W}',
         pr + r'transformer_cross_attention_layers.\1.multihead_attn.out_proj.\2'),
        (rf'{dec}cross_attn_layer_norm\.{_W}',
         pr + r'transformer_cross_attention_layers.\1.norm.\2'),
        (rf'{dec}fc([12])\.{_W}', pr + r'transformer_ffn_layers.\1.linear\2.\3'),
        (rf'{dec}final_layer_norm\.{_W}', pr + r'transformer_ffn_layers.\1.norm.\2'),
        (rf'{tr}decoder\.layernorm\.{_W}', pr + r'decoder_norm.\1'),
        (rf'{tr}decoder\.mask_predictor\.mask_embedder\.(\d)\.0\.{_W}',
         pr + r'mask_embed.layers.\1.\2'),
        (rf'class_predictor\.{_W}', pr + r'class_embed.\1'),
    ]


def _maskformer_head_to_d2() -> List[Tuple[str, str]]:
    """Hugging Face MaskFormer head (fused attention) -> v1 ``sem_seg_head.`` keys.

    Released MaskFormer checkpoints predate the ``pixel_decoder.`` prefix: the
    FPN sits directly under ``sem_seg_head.`` (``adapter_{i}``, ``layer_{i}``,
    ``mask_features``).
    """
    pix, tr = r'model\.pixel_level_module\.decoder\.', r'model\.transformer_module\.'
    head, pr = 'sem_seg_head.', 'sem_seg_head.predictor.'
    dec = rf'{tr}decoder\.layers\.(\d+)\.'
    out = pr + r'transformer.decoder.layers.\1.'
    rules = [(rf'{pix}fpn\.stem\.0\.weight', head + 'layer_4.weight'),
             (rf'{pix}fpn\.stem\.1\.{_W}', head + r'layer_4.norm.\1')]
    for j, level in zip(range(3), (3, 2, 1)):
        for part, name in (('proj', 'adapter'), ('block', 'layer')):
            rules += [(rf'{pix}fpn\.layers\.{j}\.{part}\.0\.weight',
                       f'{head}{name}_{level}.weight'),
                      (rf'{pix}fpn\.layers\.{j}\.{part}\.1\.{_W}',
                       f'{head}{name}_{level}.norm.' + r'\1')]
    return rules + [
        (rf'{pix}mask_projection\.{_W}', head + r'mask_features.\1'),
        (rf'{tr}queries_embedder\.weight', pr + 'query_embed.weight'),
        (rf'{tr}input_projection\.{_W}', pr + r'input_proj.\1'),
        (rf'{dec}self_attn\.(in_proj_weight|in_proj_bias)', out + r'self_attn.\2'),
        (rf'{dec}self_attn\.out_proj\.{_W}', out + r'self_attn.out_proj.\2'),
        (rf'{dec}encoder_attn\.(in_proj_weight|in_proj_bias)', out + r'multihead_attn.\2'),
        (rf'{dec}encoder_attn\.out_proj\.{_W}', out + r'multihead_attn.out_proj.\2'),
        (rf'{dec}self_attn_layer_norm\.{_W}', out + r'norm1.\2'),
        (rf'{dec}encoder_attn_layer_norm\.{_W}', out + r'norm2.\2'),
        (rf'{dec}final_layer_norm\.{_W}', out + r'norm3.\2'),
        (rf'{dec}fc([12])\.{_W}', out + r'linear\2.\3'),
        (rf'{tr}decoder\.layernorm\.{_W}', pr + r'transformer.decoder.norm.\1'),
        (rf'class_predictor\.{_W}', pr + r'class_embed.\1'),
        (rf'mask_embedder\.(\d)\.0\.{_W}', pr + r'mask_embed.layers.\1.\2'),
    ]


def _fuse_qkv(state_dict: Mapping[str, Tensor], parts: Sequence[str],
              fused: Sequence[str]) -> 'OrderedDict[str, Tensor]':
    """Concatenates ``<m>.{q,k,v}.{weight,bias}`` into ``<m>.{fused weight, fused bias}``."""
    out: 'OrderedDict[str, Tensor]' = OrderedDict()
    for key, value in state_dict.items():
        match = re.fullmatch(rf'(.*)\.{parts[0]}\.(weight|bias)', key)
        if match:
            prefix, kind = match.groups()
            tensors = [state_dict[f'{prefix}.{p}.{kind}'] for p in parts]
            out[f'{prefix}.{fused[0] if kind == "weight" else fused[1]}'] = torch.cat(tensors)
        elif not re.fullmatch(rf'.*\.({parts[1]}|{parts[2]})\.(weight|bias)', key):
            out[key] = value
    return out


def hf_to_detectron2(model: nn.Module) -> Dict[str, np.ndarray]:
    """Detectron2 checkpoint content (``{'model': ...}`` numpy arrays) of a HF model.

    Buffers Detectron2 does not store (``num_batches_tracked`` of its FrozenBN,
    Swin's ``relative_position_index``, the loss's ``empty_weight``, Swin's
    unused final ``layernorm``) are left out; every other key must map.

    Raises:
        KeyError: For a Hugging Face key no reverse rule maps.
    """
    hub = to_hub_layout(model.state_dict())
    prefix = 'model.pixel_level_module.encoder.'
    skip = re.compile(r'.*(num_batches_tracked|relative_position_index|empty_weight)|'
                      r'(swin\.)?layernorm\.(weight|bias)')
    backbone = OrderedDict((re.sub(r'^swin\.', '', k[len(prefix):]), v) for k, v in hub.items()
                           if k.startswith(prefix))
    head = OrderedDict((k, v) for k, v in hub.items() if not k.startswith(prefix))
    if 'Mask2Former' in type(model).__name__:
        head_rules = _mask2former_head_to_d2()
    else:
        head_rules = _maskformer_head_to_d2()
    is_swin = any('blocks' in k for k in backbone)
    if is_swin:
        backbone = _fuse_qkv(backbone, ('query', 'key', 'value'), ('qkv.weight', 'qkv.bias'))
        backbone_rules = _swin_to_d2() + [(
            rf'encoder\.layers\.(\d+)\.blocks\.(\d+)\.attention\.self\.qkv\.{_W}',
            r'backbone.layers.\1.blocks.\2.attn.qkv.\3')]
    else:
        backbone_rules = _resnet_to_d2()
    head = _fuse_qkv(head, ('q_proj', 'k_proj', 'v_proj'), ('in_proj_weight', 'in_proj_bias'))
    out: Dict[str, np.ndarray] = {}
    for source, rules in ((backbone, backbone_rules), (head, head_rules)):
        for key, value in source.items():
            if skip.fullmatch(key):
                continue
            for pattern, repl in rules:
                if re.fullmatch(pattern, key):
                    out[re.sub(pattern, repl, key)] = value.detach().numpy().copy()
                    break
            else:
                raise KeyError(f'no Detectron2 name for {key}')
    return out
