"""State-dict names and shapes of the official MaskFormer pixel decoders.

Written from facebookresearch/MaskFormer ``mask_former/modeling/heads/pixel_decoder.py``
(``BasePixelDecoder``, ``TransformerEncoderPixelDecoder``) and its DETR-style
``transformer/transformer.py``; our decoders must reproduce these keys so that
official checkpoints load by renaming the ``sem_seg_head.pixel_decoder.`` prefix only.
"""
from typing import Dict, Sequence, Tuple

Shapes = Dict[str, Tuple[int, ...]]


def official_fpn_keys(in_channels: Sequence[int], conv_dim: int, mask_dim: int) -> Shapes:
    """State-dict shapes of the official BasePixelDecoder with norm='GN'.

    detectron2's Conv2d with a norm has no bias; ``lateral_convs`` and
    ``output_convs`` are plain lists, so only ``adapter_{i}``, ``layer_{i}``
    (1-based from the finest input) and ``mask_features`` hold weights; the
    coarsest level has ``layer_{n}`` and no adapter.
    """
    keys = {}
    n = len(in_channels)
    for i, c in enumerate(in_channels[:-1], start=1):
        keys[f'adapter_{i}.weight'] = (conv_dim, c, 1, 1)
        keys[f'adapter_{i}.norm.weight'] = (conv_dim, )
        keys[f'adapter_{i}.norm.bias'] = (conv_dim, )
        keys[f'layer_{i}.weight'] = (conv_dim, conv_dim, 3, 3)
        keys[f'layer_{i}.norm.weight'] = (conv_dim, )
        keys[f'layer_{i}.norm.bias'] = (conv_dim, )
    keys[f'layer_{n}.weight'] = (conv_dim, in_channels[-1], 3, 3)
    keys[f'layer_{n}.norm.weight'] = (conv_dim, )
    keys[f'layer_{n}.norm.bias'] = (conv_dim, )
    keys['mask_features.weight'] = (mask_dim, conv_dim, 3, 3)
    keys['mask_features.bias'] = (mask_dim, )
    return keys


def official_transformer_encoder_keys(in_channels: Sequence[int], conv_dim: int, mask_dim: int,
                                      num_layers: int, ffn: int,
                                      pre_norm: bool = False) -> Shapes:
    """State-dict shapes of the official TransformerEncoderPixelDecoder (norm='GN').

    The FPN of BasePixelDecoder whose ``layer_{n}`` reads ``conv_dim`` channels,
    plus ``input_proj`` (detectron2 Conv2d without norm, with bias) and
    ``transformer.encoder.layers.{i}`` (DETR encoder layers around
    ``nn.MultiheadAttention``); ``transformer.encoder.norm`` only when pre-norm.
    """
    keys = official_fpn_keys(in_channels, conv_dim, mask_dim)
    keys[f'layer_{len(in_channels)}.weight'] = (conv_dim, conv_dim, 3, 3)
    keys['input_proj.weight'] = (conv_dim, in_channels[-1], 1, 1)
    keys['input_proj.bias'] = (conv_dim, )
    for i in range(num_layers):
        p = f'transformer.encoder.layers.{i}.'
        keys[p + 'self_attn.in_proj_weight'] = (3 * conv_dim, conv_dim)
        keys[p + 'self_attn.in_proj_bias'] = (3 * conv_dim, )
        keys[p + 'self_attn.out_proj.weight'] = (conv_dim, conv_dim)
        keys[p + 'self_attn.out_proj.bias'] = (conv_dim, )
        keys[p + 'linear1.weight'] = (ffn, conv_dim)
        keys[p + 'linear1.bias'] = (ffn, )
        keys[p + 'linear2.weight'] = (conv_dim, ffn)
        keys[p + 'linear2.bias'] = (conv_dim, )
        for norm in ('norm1', 'norm2'):
            keys[p + norm + '.weight'] = (conv_dim, )
            keys[p + norm + '.bias'] = (conv_dim, )
    if pre_norm:
        keys['transformer.encoder.norm.weight'] = (conv_dim, )
        keys['transformer.encoder.norm.bias'] = (conv_dim, )
    return keys
