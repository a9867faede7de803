"""Inconsistent head configs are rejected at build time (or at the first forward for the
backbone widths) with a message that says which config key to change."""
import pytest
import torch
from mmengine.registry import init_default_scope

from mmseg_maskformer.registry import MODELS

K = 4
BACKBONE = dict(type='ResNet', depth=18, base_channels=8, stem_channels=8,
                out_indices=(0, 1, 2, 3))  # widths 8, 16, 32, 64
MATCHER = dict(type='HungarianPointMatcher', num_points=16)


def mask2former_head(**changes) -> dict:
    head = dict(
        type='Mask2FormerDecodeHead', num_classes=K, in_channels=[8, 16, 32, 64],
        pixel_decoder=dict(type='MultiScaleDeformablePixelDecoder', feat_channels=16,
                           out_channels=16, num_encoder_layers=1, num_heads=2,
                           feedforward_dims=32, num_groups=4),
        transformer_decoder=dict(embed_dims=16, num_queries=5, num_heads=2, num_layers=1,
                                 feedforward_dims=32),
        criterion=dict(type='MaskFormerCriterion', matcher=MATCHER, num_points=16))
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(head.get(key), dict):
            head[key] = dict(head[key], **value)
        else:
            head[key] = value
    return head


def build(cfg: dict):
    init_default_scope('mmseg_maskformer')
    return MODELS.build(cfg)


def test_consistent_config_builds_and_runs():
    model = build(dict(type='MaskFormerSegmentor', backbone=BACKBONE,
                       decode_head=mask2former_head()))
    cls_logits, mask_logits = model(torch.randn(1, 3, 64, 64), mode='tensor')
    assert cls_logits.shape == (1, 5, K + 1) and mask_logits.shape == (1, 5, 16, 16)


@pytest.mark.parametrize('changes, message', [
    (dict(transformer_decoder=dict(in_channels=32)),
     r'transformer_decoder\.in_channels=32 does not match the pixel decoder \(16\); remove it'),
    (dict(transformer_decoder=dict(mask_dims=8)),
     r'transformer_decoder\.mask_dims=8 does not match the pixel decoder \(16\)'),
    (dict(pixel_decoder=dict(in_channels=[8, 16, 32, 128])),
     r'pixel_decoder\.in_channels=\[8, 16, 32, 128\] differs from the head in_channels'),
    (dict(criterion=dict(num_classes=K + 1)),
     r'criterion\.num_classes=5 differs from the head num_classes=4; set it in one place'),
    (dict(criterion=dict(class_weight=[1.0] * K)),
     r'class_weight has 4 entries but num_classes=4 needs 5 .*fix class_weight or num_classes'),
    (dict(in_index=[0, 1]), r'in_index \[0, 1\] selects 2 backbone outputs but in_channels'),
])
def test_mask2former_inconsistent_config_fails_at_build(changes, message):
    with pytest.raises(ValueError, match=message):
        build(mask2former_head(**changes))


def test_maskformer_class_weight_and_num_classes_fail_at_build():
    head = dict(type='MaskFormerDecodeHead', num_classes=K, in_channels=[8, 16, 32, 64],
                pixel_decoder=dict(type='FPNPixelDecoder', feat_channels=16, out_channels=16,
                                   num_groups=4),
                transformer_decoder=dict(embed_dims=16, num_queries=5, num_heads=2,
                                         num_layers=1, feedforward_dims=32))
    with pytest.raises(ValueError, match=r'class_weight has 3 entries but num_classes=4'):
        build(dict(head, criterion=dict(type='MaskFormerCriterion', matcher=MATCHER,
                                        class_weight=[1.0, 1.0, 0.1])))
    with pytest.raises(ValueError, match=r'transformer_decoder\.mask_dims=8 does not match '
                       'the pixel decoder out_channels'):
        build(dict(head, transformer_decoder=dict(head['transformer_decoder'], mask_dims=8)))


@pytest.mark.parametrize('head_type', ['Mask2FormerDecodeHead', 'MaskFormerDecodeHead'])
def test_backbone_width_mismatch_names_the_keys_at_first_forward(head_type):
    wide = dict(BACKBONE, base_channels=16)  # widths 16, 32, 64, 128
    head = mask2former_head(type=head_type)
    if head_type == 'MaskFormerDecodeHead':
        head = dict(type=head_type, num_classes=K, in_channels=[8, 16, 32, 64],
                    pixel_decoder=dict(type='FPNPixelDecoder', feat_channels=16,
                                       out_channels=16, num_groups=4),
                    transformer_decoder=dict(embed_dims=16, num_queries=5, num_heads=2,
                                             num_layers=1, feedforward_dims=32))
    model = build(dict(type='MaskFormerSegmentor', backbone=wide, decode_head=head))
    with pytest.raises(ValueError) as error:
        model(torch.randn(1, 3, 64, 64), mode='tensor')
    message = str(error.value)
    assert f'{head_type} got feature maps with channels [16, 32, 64, 128]' in message
    assert 'in_channels is [8, 16, 32, 64]' in message
    assert 'model.decode_head.in_channels=[16, 32, 64, 128]' in message
