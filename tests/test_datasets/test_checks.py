"""CheckSegMap: a wrong-size or out-of-range label map fails at load time, naming the file."""
import numpy as np
import pytest
from mmengine.logging import MMLogger

from mmseg_maskformer.datasets.transforms import CheckSegMap, seg_map_problem


def results(seg_map, ori_shape=(4, 5)):
    return dict(gt_seg_map=np.asarray(seg_map), ori_shape=ori_shape,
                seg_map_path='annotations/validation/ADE_val_00000007.png')


def test_valid_maps_pass_unchanged():
    seg = np.array([[0, 1, 255, 2, 2]] * 4, dtype=np.uint8)
    out = CheckSegMap(num_classes=3)(results(seg))
    assert out is not None and out['gt_seg_map'] is not None
    assert seg_map_problem(seg, (4, 5), 3, 255) is None


def test_wrong_size_names_the_file_and_both_sizes():
    with pytest.raises(ValueError) as error:
        CheckSegMap(num_classes=3)(results(np.zeros((4, 6), np.uint8)))
    message = str(error.value)
    assert 'ADE_val_00000007.png' in message and '(4, 6)' in message and '(4, 5)' in message


def test_out_of_range_labels_name_the_values():
    seg = np.array([[0, 3, 7, 255, 1]] * 4, dtype=np.uint8)
    with pytest.raises(ValueError, match=r'ADE_val_00000007.png: labels \[3, 7\] outside 0..2'):
        CheckSegMap(num_classes=3)(results(seg))
    # the ignore index is the only other value allowed
    assert CheckSegMap(num_classes=8)(results(seg)) is not None
    with pytest.raises(ValueError, match=r'\[255\]'):
        CheckSegMap(num_classes=8, ignore_index=0)(results(seg))


def test_skip_invalid_logs_and_drops(capsys):
    MMLogger.get_instance('mmseg_maskformer_test_checks')
    out = CheckSegMap(num_classes=3, skip_invalid=True)(results(np.full((4, 5), 9, np.uint8)))
    assert out is None
    assert 'skipped: annotations/validation/ADE_val_00000007.png' in capsys.readouterr().out


def test_bad_arguments():
    with pytest.raises(ValueError, match='num_classes'):
        CheckSegMap(num_classes=0)
