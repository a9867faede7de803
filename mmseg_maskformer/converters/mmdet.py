"""Our Mask2Former in mmdetection's / mmsegmentation's terms: weights and config.

mmdet's ``Mask2FormerHead`` (which mmseg's ``Mask2FormerHead`` subclasses) is
the same network as ours, with its own parameter names. This module maps a
state dict of our ``MaskFormerSegmentor`` with a ``Mask2FormerDecodeHead`` +
``MultiScaleDeformablePixelDecoder`` onto the peer's names
(:func:`ours_to_mmdet_mask2former`, and back with
:func:`mmdet_to_ours_mask2former`), and derives the peer's model config from
ours (:func:`mask2former_peer_config`) by editing the peer's own released
config (installed with the package under ``.mim/configs``), so that both can be
timed and checked for equal outputs with the same weights.

Name correspondence (head-relative; ``{i}`` layer, ``{j}`` FPN level)::

    pixel_decoder.input_proj.{i}.0 / .1        pixel_decoder.input_convs.{i}.conv / .gn
    pixel_decoder.transformer.level_embed      pixel_decoder.level_encoding.weight
    pixel_decoder.transformer.encoder.layers.{i}.
        self_attn.*                            pixel_decoder.encoder.layers.{i}.self_attn.*
        norm1 / norm2                          ... .norms.0 / .norms.1
        linear1 / linear2                      ... .ffn.layers.0.0 / .ffn.layers.1
    pixel_decoder.adapter_{j+1} (.norm)        pixel_decoder.lateral_convs.{j}.conv (.gn)
    pixel_decoder.layer_{j+1} (.norm)          pixel_decoder.output_convs.{j}.conv (.gn)
    pixel_decoder.mask_features                pixel_decoder.mask_feature
    predictor.transformer_cross_attention_layers.{i}.multihead_attn / .norm
        transformer_decoder.layers.{i}.cross_attn.attn / .norms.0
    predictor.transformer_self_attention_layers.{i}.self_attn / .norm
        transformer_decoder.layers.{i}.self_attn.attn / .norms.1
    predictor.transformer_ffn_layers.{i}.linear1 / linear2 / norm
        transformer_decoder.layers.{i}.ffn.layers.0.0 / .ffn.layers.1 / .norms.2
    predictor.decoder_norm                     transformer_decoder.post_norm
    predictor.input_proj.{i}                   decoder_input_projs.{i}
    predictor.query_feat / query_embed / level_embed   (same names)
    predictor.class_embed                      cls_embed
    predictor.mask_embed.layers.{0,1,2}        mask_embed.{0,2,4}

The backbone keeps its names. The peers build mmseg's backbone class: the
config's own, or for our faster version of one (``ResNetFoldedBN``,
``SwinTransformerSDPA``, same parameter names) mmseg's original
(:data:`MMSEG_BACKBONES`).
The head sits under ``decode_head.`` in mmseg's ``EncoderDecoder`` and under
``panoptic_head.`` in mmdet's ``Mask2Former`` detector.
"""
import copy
import os.path as osp
import re
from typing import Any, Dict, List, Mapping, Optional

from mmengine.config import Config

from .common import ConversionResult, Rule, apply_rules

#: Where each peer keeps the head, and the released config edited into the peer's.
PEERS = {
    'mmseg': dict(head_key='decode_head', package='mmseg',
                  config='mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py'),
    'mmdet': dict(head_key='panoptic_head', package='mmdet',
                  config='mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py'),
}

#: At most this many FPN levels (adapter_1..) are mapped; the official decoder has one.
_MAX_FPN_LEVELS = 3


def _head_rules() -> List[Rule]:
    """``(ours, mmdet)`` rules on head-relative keys (both sides plain names)."""
    pd, enc = r'pixel_decoder\.', r'pixel_decoder\.transformer\.encoder\.layers\.(\d+)\.'
    dec = 'transformer_decoder.layers.'
    rules = [
        (pd + r'input_proj\.(\d+)\.0\.(weight|bias)', r'pixel_decoder.input_convs.\1.conv.\2'),
        (pd + r'input_proj\.(\d+)\.1\.(weight|bias)', r'pixel_decoder.input_convs.\1.gn.\2'),
        (pd + r'transformer\.level_embed', 'pixel_decoder.level_encoding.weight'),
        (enc + r'self_attn\.(\w+)\.(weight|bias)',
         r'pixel_decoder.encoder.layers.\1.self_attn.\2.\3'),
        (enc + r'norm1\.(weight|bias)', r'pixel_decoder.encoder.layers.\1.norms.0.\2'),
        (enc + r'norm2\.(weight|bias)', r'pixel_decoder.encoder.layers.\1.norms.1.\2'),
        (enc + r'linear1\.(weight|bias)', r'pixel_decoder.encoder.layers.\1.ffn.layers.0.0.\2'),
        (enc + r'linear2\.(weight|bias)', r'pixel_decoder.encoder.layers.\1.ffn.layers.1.\2'),
    ]
    for j in range(_MAX_FPN_LEVELS):
        for ours, theirs in ((f'adapter_{j + 1}', f'lateral_convs.{j}'),
                             (f'layer_{j + 1}', f'output_convs.{j}')):
            rules += [(pd + ours + r'\.weight', f'pixel_decoder.{theirs}.conv.weight'),
                      (pd + ours + r'\.norm\.(weight|bias)', f'pixel_decoder.{theirs}.gn.\\1')]
    attn = r'\.(in_proj_weight|in_proj_bias|out_proj\.weight|out_proj\.bias)'
    pred = r'predictor\.'
    ffn = pred + r'transformer_ffn_layers\.(\d+)\.'
    rules += [
        (pd + r'mask_features\.(weight|bias)', r'pixel_decoder.mask_feature.\1'),
        (pred + r'transformer_cross_attention_layers\.(\d+)\.multihead_attn' + attn,
         dec + r'\1.cross_attn.attn.\2'),
        (pred + r'transformer_cross_attention_layers\.(\d+)\.norm\.(weight|bias)',
         dec + r'\1.norms.0.\2'),
        (pred + r'transformer_self_attention_layers\.(\d+)\.self_attn' + attn,
         dec + r'\1.self_attn.attn.\2'),
        (pred + r'transformer_self_attention_layers\.(\d+)\.norm\.(weight|bias)',
         dec + r'\1.norms.1.\2'),
        (ffn + r'linear1\.(weight|bias)', dec + r'\1.ffn.layers.0.0.\2'),
        (ffn + r'linear2\.(weight|bias)', dec + r'\1.ffn.layers.1.\2'),
        (ffn + r'norm\.(weight|bias)', dec + r'\1.norms.2.\2'),
        (pred + r'decoder_norm\.(weight|bias)', r'transformer_decoder.post_norm.\1'),
        (pred + r'input_proj\.(\d+)\.(weight|bias)', r'decoder_input_projs.\1.\2'),
        (pred + r'(query_feat|query_embed|level_embed)\.weight', r'\1.weight'),
        (pred + r'class_embed\.(weight|bias)', r'cls_embed.\1'),
    ]
    rules += [(pred + rf'mask_embed\.layers\.{i}\.(weight|bias)', f'mask_embed.{2 * i}.\\1')
              for i in range(3)]
    return rules


def _inverse(rules: List[Rule]) -> List[Rule]:
    """Inverse of rules whose replacements are plain names with ``\\N`` groups.

    Each replacement becomes a pattern (dots escaped, each ``\\N`` a group of
    what the source pattern's N-th group matched) and vice versa.
    """
    inverse = []
    for pattern, repl in rules:
        groups = re.findall(r'\((.*?)\)', pattern)
        order = [int(n) for n in re.findall(r'\\(\d)', repl)]
        new_pattern = re.escape(re.sub(r'\\\d', '@', repl))
        for n in order:
            new_pattern = new_pattern.replace('@', f'({groups[n - 1]})', 1)
        new_repl = pattern
        for rank, n in enumerate(order, start=1):
            new_repl = new_repl.replace(f'({groups[n - 1]})', f'\\{rank}', 1)
        inverse.append((new_pattern, new_repl.replace('\\.', '.')))
    return inverse


def ours_to_mmdet_mask2former(state_dict: Mapping[str, Any],
                              peer: str = 'mmseg') -> ConversionResult:
    """Our Mask2Former weights under the peer's names.

    Args:
        state_dict: State dict of our ``MaskFormerSegmentor`` (``backbone.*``,
            ``decode_head.pixel_decoder.*``, ``decode_head.predictor.*``).
        peer: ``'mmseg'`` (``EncoderDecoder``, head under ``decode_head.``) or
            ``'mmdet'`` (``Mask2Former`` detector, head under ``panoptic_head.``).

    Returns:
        The renamed tensors; ``decode_head.criterion.*`` buffers are dropped.
    """
    head = PEERS[peer]['head_key']
    rules = [(r'backbone\.(.*)', r'backbone.\1')]
    rules += [(r'decode_head\.' + p, f'{head}.{r}') for p, r in _head_rules()]
    return apply_rules(state_dict, rules, drop=[r'decode_head\.criterion\..*'])


def mmdet_to_ours_mask2former(state_dict: Mapping[str, Any],
                              peer: str = 'mmseg') -> ConversionResult:
    """The inverse of :func:`ours_to_mmdet_mask2former` (peer names -> ours)."""
    head = re.escape(PEERS[peer]['head_key'])
    rules = [(r'backbone\.(.*)', r'backbone.\1')]
    rules += [(head + r'\.' + p, 'decode_head.' + r) for p, r in _inverse(_head_rules())]
    return apply_rules(state_dict, rules)


def peer_config_path(peer: str) -> str:
    """Path of the peer's released Mask2Former config in its installed package."""
    package = __import__(PEERS[peer]['package'])
    path = osp.join(osp.dirname(package.__file__), '.mim', 'configs', PEERS[peer]['config'])
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} is missing: {peer} was installed without its configs')
    return path


#: our backbones that are faster versions of an mmseg class -> that class (same arguments
#: and parameter names); a peer builds the mmseg class, its own implementation
MMSEG_BACKBONES = {'ResNetFoldedBN': 'ResNet', 'SwinTransformerSDPA': 'SwinTransformer'}


def _scoped(cfg: Mapping[str, Any]) -> Dict[str, Any]:
    """A copy of a module config of ours whose ``type`` names its owner's scope.

    ``'ResNet'`` built from our registry is mmseg's class, so it becomes
    ``'mmseg.ResNet'``, which any OpenMMLab registry resolves to the same class.
    """
    from mmseg_maskformer.registry import MODELS
    cfg = copy.deepcopy(dict(cfg))
    if isinstance(cfg.get('type'), str) and '.' not in cfg['type']:
        cls = MODELS.get(cfg['type'])
        if cls is None:
            raise KeyError(f'{cfg["type"]} is not in the mmseg_maskformer model registry')
        cfg['type'] = f'{cls.__module__.split(".")[0]}.{cfg["type"]}'
    return cfg


def _check_supported(model_cfg: Mapping[str, Any]) -> None:
    head = model_cfg['decode_head']
    pixel = head['pixel_decoder']
    if head['type'] != 'Mask2FormerDecodeHead' or \
            pixel['type'] != 'MultiScaleDeformablePixelDecoder':
        raise ValueError('the mmseg/mmdet peers exist for Mask2FormerDecodeHead with '
                         f'MultiScaleDeformablePixelDecoder, not {head["type"]} with '
                         f'{pixel["type"]}')
    if head.get('in_index') is not None or model_cfg.get('neck') is not None:
        raise ValueError('the peers take every backbone output in order and have no neck')


def _head_options(model_cfg: Mapping[str, Any], num_classes: int) -> Dict[str, Any]:
    """Dotted-key overrides of the peer head that reproduce our sizes."""
    head = model_cfg['decode_head']
    pixel, dec = head['pixel_decoder'], head['transformer_decoder']
    feat = pixel.get('feat_channels', 256)
    enc = 'pixel_decoder.encoder.'
    msda = enc + 'layer_cfg.self_attn_cfg.'
    layer = 'transformer_decoder.layer_cfg.'
    crit = head.get('criterion', {})
    options = {
        'in_channels': list(head.get('in_channels', (256, 512, 1024, 2048))),
        'strides': list(head.get('strides', (4, 8, 16, 32))),
        'feat_channels': feat,
        'out_channels': pixel.get('out_channels', 256),
        'num_queries': dec.get('num_queries', 100),
        'num_transformer_feat_level': pixel.get('num_transformer_levels', 3),
        'pixel_decoder.num_outs': pixel.get('num_transformer_levels', 3),
        'pixel_decoder.norm_cfg.num_groups': pixel.get('num_groups', 32),
        'pixel_decoder.positional_encoding.num_feats': feat // 2,
        enc + 'num_layers': pixel.get('num_encoder_layers', 6),
        msda + 'embed_dims': feat,
        msda + 'num_heads': pixel.get('num_heads', 8),
        msda + 'num_levels': pixel.get('num_transformer_levels', 3),
        msda + 'num_points': pixel.get('num_points', 4),
        enc + 'layer_cfg.ffn_cfg.embed_dims': feat,
        enc + 'layer_cfg.ffn_cfg.feedforward_channels': pixel.get('feedforward_dims', 1024),
        'positional_encoding.num_feats': dec.get('embed_dims', 256) // 2,
        'transformer_decoder.num_layers': dec.get('num_layers', 9),
        'loss_cls.class_weight': [1.0] * num_classes + [crit.get('no_object_weight', 0.1)],
        'train_cfg.num_points': crit.get('num_points', 12544),
    }
    for attn in ('self_attn_cfg', 'cross_attn_cfg'):
        options[layer + attn + '.embed_dims'] = dec.get('embed_dims', 256)
        options[layer + attn + '.num_heads'] = dec.get('num_heads', 8)
    options[layer + 'ffn_cfg.embed_dims'] = dec.get('embed_dims', 256)
    options[layer + 'ffn_cfg.feedforward_channels'] = dec.get('feedforward_dims', 2048)
    return options


def mask2former_peer_config(model_cfg: Mapping[str, Any], peer: str = 'mmseg',
                            num_thing_classes: Optional[int] = None) -> Config:
    """The peer's Mask2Former config with our model's sizes.

    Starts from the peer's released R-50 config (mmseg: ADE20K semantic; mmdet:
    COCO panoptic) and overrides the backbone (ours, built from our registry,
    which falls back to mmseg's) and every size of the head. Losses and
    matcher keep the peer's settings (the official recipe, as ours).

    Args:
        model_cfg: Our ``model`` config (``MaskFormerSegmentor``).
        peer: ``'mmseg'`` or ``'mmdet'``.
        num_thing_classes: mmdet only: the first ``num_thing_classes`` classes
            are things, the rest stuff (mmdet's convention); by default the
            length of our ``test_cfg.thing_class_ids``, else all classes.

    Returns:
        A config whose ``model`` builds in the peer's default scope (its
        ``default_scope`` is set).

    Raises:
        ValueError: For heads other than ``Mask2FormerDecodeHead`` with
            ``MultiScaleDeformablePixelDecoder``, or an unknown peer.
    """
    if peer not in PEERS:
        raise ValueError(f'peer must be one of {sorted(PEERS)}, got {peer!r}')
    _check_supported(model_cfg)
    cfg = Config.fromfile(peer_config_path(peer))
    num_classes = int(model_cfg['decode_head']['num_classes'])
    head = PEERS[peer]['head_key']
    options = {f'model.{head}.{k}': v for k, v in _head_options(model_cfg, num_classes).items()}
    if peer == 'mmseg':
        options[f'model.{head}.num_classes'] = num_classes
    else:
        test_cfg = model_cfg.get('test_cfg') or {}
        if num_thing_classes is None:
            thing_ids = test_cfg.get('thing_class_ids')
            num_thing_classes = num_classes if thing_ids is None else len(thing_ids)
        for key in (head, 'panoptic_fusion_head'):
            options[f'model.{key}.num_things_classes'] = num_thing_classes
            options[f'model.{key}.num_stuff_classes'] = num_classes - num_thing_classes
    cfg.merge_from_dict(options)
    backbone = dict(model_cfg['backbone'])
    backbone['type'] = MMSEG_BACKBONES.get(backbone['type'], backbone['type'])
    cfg.model.backbone = _scoped(backbone)
    cfg.model.backbone.pop('init_cfg', None)
    cfg.model.pop('data_preprocessor', None)
    cfg.default_scope = PEERS[peer]['package']
    return cfg
