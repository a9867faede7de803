"""Same weights, same outputs: our Mask2Former against mmseg's and mmdet's.

A tiny model of ours is built with random weights, the peer's model is built
from the peer's own released config with our sizes
(:func:`mask2former_peer_config`), our weights are copied into it through the
converter with a strict load, and both run on the same input.
"""
import importlib
from typing import Tuple

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.registry import DefaultScope
from torch import nn

from mmseg_maskformer.converters.common import compare_with_model
from mmseg_maskformer.converters.mmdet import (mask2former_peer_config,
                                               mmdet_to_ours_mask2former,
                                               ours_to_mmdet_mask2former)
from mmseg_maskformer.registry import MODELS

NUM_CLASSES = 7


def tiny_model_cfg(**test_cfg) -> ConfigDict:
    """A Mask2Former of ours small enough for a unit test."""
    return ConfigDict(
        type='MaskFormerSegmentor',
        backbone=dict(type='ResNet', depth=18, base_channels=8, stem_channels=8,
                      out_indices=(0, 1, 2, 3), norm_cfg=dict(type='BN', requires_grad=True)),
        decode_head=dict(
            type='Mask2FormerDecodeHead', num_classes=NUM_CLASSES, in_channels=[8, 16, 32, 64],
            pixel_decoder=dict(type='MultiScaleDeformablePixelDecoder', feat_channels=32,
                               out_channels=24, num_encoder_layers=2, num_heads=4,
                               feedforward_dims=48, num_groups=8),
            transformer_decoder=dict(embed_dims=32, num_queries=6, num_heads=4, num_layers=3,
                                     feedforward_dims=40),
            criterion=dict(type='MaskFormerCriterion',
                           matcher=dict(type='HungarianPointMatcher', num_points=64),
                           num_points=64)),
        test_cfg=dict(semantic_on=True, **test_cfg))


def build_pair(peer: str, model_cfg: ConfigDict) -> Tuple[nn.Module, nn.Module]:
    """Our model (random weights) and the peer's holding the same weights."""
    torch.manual_seed(0)
    ours = MODELS.build(model_cfg).eval()
    with torch.no_grad():  # random BN statistics, so that they matter too
        for module in ours.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)
    cfg = mask2former_peer_config(model_cfg, peer)
    registry = importlib.import_module(f'{peer}.registry').MODELS
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        theirs = registry.build(cfg.model).eval()
    result = ours_to_mmdet_mask2former(ours.state_dict(), peer)
    assert result.unmatched == [] and result.dropped == []
    assert compare_with_model(result.state_dict, theirs) == dict(
        missing=[], unexpected=[], shape_mismatch=[])
    theirs.load_state_dict(result.state_dict, strict=True)
    return ours, theirs


@pytest.mark.parametrize('peer', ['mmseg', 'mmdet'])
def test_same_weights_give_same_logits(peer):
    cfg = tiny_model_cfg() if peer == 'mmseg' else tiny_model_cfg(
        panoptic_on=True, thing_class_ids=[0, 1, 2, 3])
    ours, theirs = build_pair(peer, cfg)
    inputs = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        feats = ours.extract_feat(inputs)
        our_cls, our_masks = ours.decode_head(feats)
        head = theirs.decode_head if peer == 'mmseg' else theirs.panoptic_head
        their_cls, their_masks = head(theirs.extract_feat(inputs), [None] * 2)
    assert len(our_cls) == len(their_cls) == 4  # 3 layers + the initial queries
    for layer in range(4):  # every layer, the final one included
        torch.testing.assert_close(their_cls[layer], our_cls[layer], atol=1e-4, rtol=0)
        torch.testing.assert_close(their_masks[layer], our_masks[layer], atol=1e-4, rtol=0)
    assert our_masks[-1].shape == (2, 6, 16, 24)
    assert our_masks[-1].abs().max() > 1e-2  # not a trivially zero comparison


@pytest.mark.parametrize('peer', ['mmseg', 'mmdet'])
def test_inverse_conversion_restores_our_state_dict(peer):
    ours, theirs = build_pair(peer, tiny_model_cfg())
    back = mmdet_to_ours_mask2former(theirs.state_dict(), peer)
    assert back.unmatched == []
    expected = ours.state_dict()
    assert sorted(back.state_dict) == sorted(expected)
    for key, value in expected.items():
        assert torch.equal(back.state_dict[key], value), key


def test_mmdet_peer_takes_thing_and_stuff_counts_from_test_cfg():
    cfg = mask2former_peer_config(tiny_model_cfg(panoptic_on=True, thing_class_ids=[0, 1]),
                                  'mmdet')
    assert cfg.model.panoptic_head.num_things_classes == 2
    assert cfg.model.panoptic_head.num_stuff_classes == NUM_CLASSES - 2
    assert cfg.model.panoptic_fusion_head.num_stuff_classes == NUM_CLASSES - 2
    assert len(cfg.model.panoptic_head.loss_cls.class_weight) == NUM_CLASSES + 1


def test_peer_config_refuses_other_heads():
    cfg = tiny_model_cfg()
    cfg.decode_head.pixel_decoder.type = 'MSDeformAttnPixelDecoder'
    with pytest.raises(ValueError, match='MultiScaleDeformablePixelDecoder'):
        mask2former_peer_config(cfg, 'mmseg')
    with pytest.raises(ValueError, match='peer must be'):
        mask2former_peer_config(tiny_model_cfg(), 'hf')


@pytest.mark.parametrize('backbone', [
    dict(type='SwinTransformerSDPA', embed_dims=8, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4),
         window_size=3, drop_path_rate=0.0, out_indices=(0, 1, 2, 3)),
    dict(type='ResNetFoldedBN', depth=18, base_channels=8, stem_channels=8,
         out_indices=(0, 1, 2, 3), norm_cfg=dict(type='BN', requires_grad=True)),
], ids=['swin', 'resnet'])
def test_faster_backbone_peer_builds_the_mmseg_class_and_gives_same_logits(backbone):
    """Our faster backbones give the peer mmseg's own class (MMSEG_BACKBONES)."""
    from mmseg.models import backbones as mmseg_backbones

    from mmseg_maskformer.converters.mmdet import MMSEG_BACKBONES
    from mmseg_maskformer.models import backbones as our_backbones
    cfg = tiny_model_cfg()
    cfg.backbone = backbone
    ours, theirs = build_pair('mmseg', cfg)
    assert type(ours.backbone) is getattr(our_backbones, backbone['type'])
    assert type(theirs.backbone) is getattr(mmseg_backbones, MMSEG_BACKBONES[backbone['type']])
    inputs = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        our_cls, our_masks = ours.decode_head(ours.extract_feat(inputs))
        their_cls, their_masks = theirs.decode_head(theirs.extract_feat(inputs), [None])
    torch.testing.assert_close(their_cls[-1], our_cls[-1], atol=1e-4, rtol=0)
    torch.testing.assert_close(their_masks[-1], our_masks[-1], atol=1e-4, rtol=0)
