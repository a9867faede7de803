"""Our registries: mmseg/mmdet names resolve, unknown types name the close ones."""
import pytest

from mmseg_maskformer.registry import METRICS, MODELS, TRANSFORMS, known_names


@pytest.mark.parametrize('registry, typo, expected', [
    (MODELS, 'Mask2FormerDecoderHead', 'Mask2FormerDecodeHead'),
    (MODELS, 'Resnet', 'ResNet'),  # mmseg's, through the parent
    (TRANSFORMS, 'PackMaskformerInputs', 'PackMaskFormerInputs'),
    (TRANSFORMS, 'mmdet.RandomCropp', 'mmdet.RandomCrop'),  # another scope, by prefix
    (METRICS, 'PanopticQualityMetrics', 'PanopticQualityMetric'),
])
def test_unknown_type_lists_close_names(registry, typo, expected):
    with pytest.raises(KeyError) as error:
        registry.build(dict(type=typo))
    message = str(error.value)
    assert repr(typo) in message and 'close names' in message
    assert expected in message.split('close names:')[1]


def test_nested_unknown_type_is_reported_with_its_suggestions():
    with pytest.raises(KeyError, match='close names: ResNet'):
        MODELS.build(dict(type='MaskFormerSegmentor', backbone=dict(type='ResNett', depth=18),
                          decode_head=dict(type='Mask2FormerDecodeHead')))


def test_no_close_name_says_so():
    with pytest.raises(KeyError, match='no close name among the'):
        TRANSFORMS.build(dict(type='zzzz'))


def test_other_errors_pass_through_unchanged():
    # a known type with bad arguments is not an "unknown type"
    with pytest.raises(TypeError, match='num_classes'):
        MODELS.build(dict(type='Mask2FormerDecodeHead'))


def test_known_names_span_our_parents_and_other_scopes():
    names = known_names(MODELS)
    assert {'MaskFormerSegmentor', 'ResNet', 'mmdet.Mask2FormerHead'} <= set(names)
