"""A config of ours that builds the architecture of a Hugging Face checkpoint.

:func:`config_from_huggingface` turns a ``transformers`` ``config.json`` (as a
dict) of ``Mask2FormerForUniversalSegmentation`` or
``MaskFormerForInstanceSegmentation`` into the text of a self-contained config
(no ``_base_``) whose model loads the weights of
:func:`~.huggingface.convert_huggingface` without missing or unexpected keys.

Preprocessing: the Hugging Face image processors take RGB images scaled to
``[0, 1]`` and normalise them with the ImageNet mean ``(0.485, 0.456, 0.406)``
and std ``(0.229, 0.224, 0.225)``. Our data preprocessor takes the 0-255 BGR
images of mmcv, so the config uses ``mean * 255 = (123.675, 116.28, 103.53)``,
``std * 255 = (58.395, 57.12, 57.375)`` and ``bgr_to_rgb=True``: the same
network input.
"""
import os.path as osp
from pprint import pformat
from typing import Any, Dict, List, Mapping, Optional, Sequence

from .huggingface import hf_architecture, hf_backbone_type

__all__ = ['config_from_huggingface', 'IMAGENET_MEAN', 'IMAGENET_STD']

#: Mean and std of the Hugging Face image processors (``[0, 1]`` RGB images).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_RESNET_DEPTHS = {('basic', (2, 2, 2, 2)): 18, ('basic', (3, 4, 6, 3)): 34,
                  ('bottleneck', (3, 4, 6, 3)): 50, ('bottleneck', (3, 4, 23, 3)): 101,
                  ('bottleneck', (3, 8, 36, 3)): 152}


def _swin_backbone(cfg: Mapping[str, Any]) -> Dict[str, Any]:
    """Arguments of ``SwinTransformerSDPA`` (mmseg Swin's) for a Hugging Face Swin config."""
    if cfg.get('use_absolute_embeddings'):
        raise ValueError('Swin with absolute position embeddings is not supported')
    depths = list(cfg['depths'])
    return dict(
        type='SwinTransformerSDPA',
        pretrain_img_size=cfg.get('image_size', 224),
        embed_dims=cfg['embed_dim'],
        patch_size=cfg.get('patch_size', 4),
        window_size=cfg['window_size'],
        mlp_ratio=cfg.get('mlp_ratio', 4.0),
        depths=depths,
        num_heads=list(cfg['num_heads']),
        strides=[cfg.get('patch_size', 4)] + [2] * (len(depths) - 1),
        out_indices=list(range(len(depths))),
        qkv_bias=cfg.get('qkv_bias', True),
        patch_norm=True,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=cfg.get('drop_path_rate', 0.3),
        use_abs_pos_embed=False,
        init_cfg=None)


def _resnet_backbone(cfg: Mapping[str, Any]) -> Dict[str, Any]:
    """``ResNetFoldedBN`` arguments (mmseg ``ResNet``'s) of a Hugging Face ResNet config."""
    layer_type = cfg.get('layer_type', 'bottleneck')
    key = (layer_type, tuple(cfg['depths']))
    if key not in _RESNET_DEPTHS:
        raise ValueError(f'no mmseg ResNet has {layer_type} blocks {list(cfg["depths"])}')
    if cfg.get('downsample_in_first_stage'):
        raise ValueError('ResNets that downsample in their first stage are not supported')
    expansion = 4 if layer_type == 'bottleneck' else 1
    widths = list(cfg['hidden_sizes'])
    base = widths[0] // expansion
    if widths != [base * expansion * 2**i for i in range(len(widths))]:
        raise ValueError(f'hidden_sizes {widths} do not double from stage to stage')
    return dict(
        type='ResNetFoldedBN',
        depth=_RESNET_DEPTHS[key],
        stem_channels=cfg['embedding_size'],
        base_channels=base,
        num_stages=len(widths),
        out_indices=list(range(len(widths))),
        strides=[1, 2, 2, 2][:len(widths)],
        dilations=[1] * len(widths),
        # Hugging Face ``downsample_in_bottleneck``: stride on the first 1x1 conv
        style='caffe' if cfg.get('downsample_in_bottleneck') else 'pytorch',
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        init_cfg=None)


def _backbone(hf_config: Mapping[str, Any]) -> Dict[str, Any]:
    """Backbone config and its output channels (fine to coarse)."""
    cfg = hf_config['backbone_config']
    if hf_backbone_type(hf_config) == 'swin':
        backbone = _swin_backbone(cfg)
        channels = [cfg['embed_dim'] * 2**i for i in range(len(cfg['depths']))]
    else:
        backbone = _resnet_backbone(cfg)
        channels = list(cfg['hidden_sizes'])
    return dict(backbone=backbone, in_channels=channels)


def _num_classes(hf_config: Mapping[str, Any]) -> int:
    """K from ``id2label`` (or ``num_labels``)."""
    id2label = hf_config.get('id2label')
    return len(id2label) if id2label else int(hf_config['num_labels'])


def _mask2former_head(hf: Mapping[str, Any], in_channels: List[int],
                      num_classes: int) -> Dict[str, Any]:
    """``Mask2FormerDecodeHead`` config of a Hugging Face Mask2Former config."""
    num_points = hf.get('train_num_points', 12544)
    weights = dict(cls_weight=hf.get('class_weight', 2.0), mask_weight=hf.get('mask_weight', 5.0),
                   dice_weight=hf.get('dice_weight', 5.0))
    return dict(
        type='Mask2FormerDecodeHead',
        num_classes=num_classes,
        in_channels=in_channels,
        strides=list(hf.get('feature_strides', [4, 8, 16, 32])),
        pixel_decoder=dict(
            type='MultiScaleDeformablePixelDecoder',
            feat_channels=hf['feature_size'],
            out_channels=hf['mask_feature_size'],
            num_transformer_levels=3,
            num_encoder_layers=hf['encoder_layers'],
            num_heads=hf['num_attention_heads'],
            num_points=4,
            feedforward_dims=hf['encoder_feedforward_dim'],
            num_groups=32,
            common_stride=hf.get('common_stride', 4)),
        transformer_decoder=dict(
            embed_dims=hf['hidden_dim'],
            num_queries=hf['num_queries'],
            num_heads=hf['num_attention_heads'],
            num_layers=hf['decoder_layers'] - 1,  # Hugging Face counts the query prediction
            feedforward_dims=hf['dim_feedforward'],
            enforce_input_proj=bool(hf.get('enforce_input_projection', False))),
        criterion=dict(
            type='MaskFormerCriterion',
            matcher=dict(type='HungarianPointMatcher', num_points=num_points, **weights),
            no_object_weight=hf.get('no_object_weight', 0.1),
            mask_loss='sigmoid_ce',
            num_points=num_points,
            oversample_ratio=hf.get('oversample_ratio', 3.0),
            importance_sample_ratio=hf.get('importance_sample_ratio', 0.75),
            **weights))


def _maskformer_head(hf: Mapping[str, Any], in_channels: List[int],
                     num_classes: int) -> Dict[str, Any]:
    """``MaskFormerDecodeHead`` config of a Hugging Face MaskFormer config."""
    detr = hf.get('decoder_config') or {}
    return dict(
        type='MaskFormerDecodeHead',
        num_classes=num_classes,
        in_channels=in_channels,
        strides=[4, 8, 16, 32][:len(in_channels)],
        pixel_decoder=dict(type='FPNPixelDecoder', feat_channels=hf.get('fpn_feature_size', 256),
                           out_channels=hf.get('mask_feature_size', 256), num_groups=32),
        transformer_in_feature='res5',
        transformer_decoder=dict(
            embed_dims=detr.get('d_model', 256),
            num_queries=detr.get('num_queries', hf.get('num_queries', 100)),
            num_heads=detr.get('decoder_attention_heads', 8),
            num_layers=detr.get('decoder_layers', 6),
            feedforward_dims=detr.get('decoder_ffn_dim', 2048),
            dropout=detr.get('dropout', 0.1)))


def model_dict_from_huggingface(hf_config: Mapping[str, Any],
                                image_mean: Sequence[float] = IMAGENET_MEAN,
                                image_std: Sequence[float] = IMAGENET_STD) -> Dict[str, Any]:
    """The ``model`` dict of :func:`config_from_huggingface`."""
    parts = _backbone(hf_config)
    num_classes = _num_classes(hf_config)
    if hf_architecture(hf_config) == 'mask2former':
        head = _mask2former_head(hf_config, parts['in_channels'], num_classes)
    else:
        head = _maskformer_head(hf_config, parts['in_channels'], num_classes)
    num_queries = head['transformer_decoder']['num_queries']
    return dict(
        type='MaskFormerSegmentor',
        data_preprocessor=dict(
            type='MaskFormerDataPreprocessor',
            mean=[round(m * 255, 4) for m in image_mean],
            std=[round(s * 255, 4) for s in image_std],
            bgr_to_rgb=True,
            pad_val=0,
            seg_pad_val=255,
            size_divisor=32),
        backbone=parts['backbone'],
        decode_head=head,
        train_cfg=dict(),
        test_cfg=dict(mode='whole', semantic_on=True, panoptic_on=False, instance_on=False,
                      object_mask_threshold=0.8, overlap_threshold=0.8,
                      max_per_image=num_queries))


def config_from_huggingface(hf_config: Mapping[str, Any],
                            image_mean: Optional[Sequence[float]] = None,
                            image_std: Optional[Sequence[float]] = None) -> str:
    """Text of a self-contained config building a Hugging Face checkpoint's model.

    Args:
        hf_config: ``config.json`` of the checkpoint, as a dict.
        image_mean: ``image_mean`` of its image processor (``[0, 1]`` RGB);
            ImageNet's by default, as in every released checkpoint.
        image_std: ``image_std`` of its image processor; ImageNet's by default.

    Returns:
        Python source defining ``class_names`` (from ``id2label``) and
        ``model``: backbone, head widths, queries, layers, classes, strides,
        data preprocessor and ``test_cfg`` (semantic output; set
        ``panoptic_on`` with ``thing_class_ids`` for panoptic output).
    """
    model = model_dict_from_huggingface(hf_config, image_mean or IMAGENET_MEAN,
                                        image_std or IMAGENET_STD)
    id2label = hf_config.get('id2label') or {}
    names = tuple(str(id2label[k]) for k in sorted(id2label, key=int))
    name = hf_config.get('_name_or_path') or ''
    source = osp.basename(osp.normpath(name)) if name else 'a Hugging Face checkpoint'
    header = (f'# Converted from {source} ({", ".join(hf_config.get("architectures") or [])}).\n'
              '# Inputs: mmcv BGR 0-255 images; the data preprocessor applies the image\n'
              '# processor\'s RGB mean/std scaled by 255.\n')
    return (header + f'class_names = {pformat(names, width=96)}\n'
            f'model = {pformat(model, width=96, sort_dicts=False)}\n')
