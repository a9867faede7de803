"""Bad data fails at load time naming the file and the problem, or is skipped with a warning.

Each test writes a tiny dataset (synthetic ADE20K semantic layout or synthetic COCO
panoptic layout) into ``tmp_path``, corrupts one file and loads it through the
dataset and pipeline the configs use.
"""
import copy
import json
import os
import os.path as osp

import cv2
import mmcv
import numpy as np
import pytest
from PIL import Image
from mmengine.registry import init_default_scope
from mmseg.datasets import ADE20KDataset

from mmseg_maskformer.datasets import (PanopticFormatDataset, generate_synthetic_ade20k,
                                       generate_synthetic_coco)
from mmseg_maskformer.datasets.transforms import checks
from mmseg_maskformer.datasets.transforms import (CheckedLoadImageFromFile,
                                                  LoadPanopticTargets, image_bytes_problem,
                                                  read_image_checked)
from mmseg_maskformer.utils.panoptic import id2rgb, rgb2id


@pytest.fixture(autouse=True)
def our_scope() -> None:
    """Build pipelines in the ``mmseg_maskformer`` scope, as configs do."""
    init_default_scope('mmseg_maskformer')


@pytest.fixture
def logged(monkeypatch) -> list:
    """``(message, level)`` of every log line the checks write."""
    lines = []
    monkeypatch.setattr(checks, 'print_log',
                        lambda msg, logger=None, level=20: lines.append((msg, level)))
    return lines


def ade_pipeline(skip_invalid: bool = False) -> list:
    """The semantic loading steps of the ADE20K configs, with the checked image loader."""
    return [dict(type='CheckedLoadImageFromFile', skip_invalid=skip_invalid),
            dict(type='CheckedLoadAnnotations', skip_invalid=skip_invalid),
            dict(type='CheckSegMap', num_classes=150, skip_invalid=skip_invalid)]


def ade_dataset(root: str, skip_invalid: bool = False, test_mode: bool = True) -> ADE20KDataset:
    """The training split of a synthetic ADE20K dataset under ``root``."""
    return ADE20KDataset(data_root=root, data_prefix=dict(img_path='images/training',
                                                          seg_map_path='annotations/training'),
                         pipeline=ade_pipeline(skip_invalid), test_mode=test_mode,
                         reduce_zero_label=True)


@pytest.fixture
def ade_root(tmp_path) -> str:
    """A fresh three-image synthetic ADE20K dataset (training split)."""
    root = str(tmp_path / 'ade')
    generate_synthetic_ade20k(root, num_train=3, num_val=1, img_size=32, seed=3)
    return root


def ade_file(root: str, kind: str, index: int = 1) -> str:
    """Path of training image (``kind='img'``) or label map (``'seg'``) number ``index``."""
    if kind == 'img':
        return osp.join(root, 'images', 'training', f'ADE_train_{index:08d}.jpg')
    return osp.join(root, 'annotations', 'training', f'ADE_train_{index:08d}.png')


def truncate(path: str, keep: float = 0.5) -> None:
    """Cut a file to ``keep`` of its length, as an interrupted copy does."""
    with open(path, 'rb') as file:
        data = file.read()
    with open(path, 'wb') as file:
        file.write(data[:int(len(data) * keep)])


def garble(path: str) -> None:
    """Overwrite the middle third of a file with random bytes, keeping its end."""
    with open(path, 'rb') as file:
        data = bytearray(file.read())
    third = len(data) // 3
    data[third:2 * third] = np.random.default_rng(0).integers(0, 256, third, np.uint8).tobytes()
    with open(path, 'wb') as file:
        file.write(bytes(data))


# ---------------------------------------------------------------- images


def test_clean_dataset_loads(ade_root):
    sample = ade_dataset(ade_root)[0]
    assert sample['img'].shape == (32, 32, 3) and sample['gt_seg_map'].shape == (32, 32)


def test_missing_image_names_the_file(ade_root):
    dataset = ade_dataset(ade_root)  # the dataset lists the image folder when built
    os.remove(ade_file(ade_root, 'img'))
    with pytest.raises(FileNotFoundError, match=r'ADE_train_00000001\.jpg: file not found'):
        dataset[0]


def test_truncated_jpeg_names_the_file(ade_root):
    path = ade_file(ade_root, 'img')
    truncate(path)
    with pytest.raises(ValueError, match=r'ADE_train_00000001\.jpg: truncated JPEG'):
        ade_dataset(ade_root)[0]


@pytest.mark.parametrize('fmt', ['JPEG', 'PNG'])
def test_trailing_bytes_after_a_complete_image_are_accepted(tmp_path, fmt):
    path = tmp_path / f'trailer.{fmt.lower()}'
    Image.fromarray(np.full((24, 24, 3), 90, np.uint8)).save(path, format=fmt)
    with open(path, 'ab') as file:
        file.write(b'camera trailer ' * 40)  # beyond the end-marker window
    assert read_image_checked(str(path)).shape == (24, 24, 3)


def test_empty_and_non_image_files(tmp_path):
    empty = tmp_path / 'empty.jpg'
    empty.write_bytes(b'')
    with pytest.raises(ValueError, match=r'empty\.jpg: empty file'):
        read_image_checked(str(empty))
    text = tmp_path / 'notes.png'
    text.write_bytes(b'this is not an image' * 10)
    with pytest.raises(ValueError, match=r'notes\.png: cannot be decoded as an image'):
        read_image_checked(str(text))


def test_png_with_garbage_bytes(tmp_path):
    path = str(tmp_path / 'noise.png')
    pixels = np.random.default_rng(1).integers(0, 256, (40, 40, 3), np.uint8)
    cv2.imwrite(path, pixels)
    assert image_bytes_problem(open(path, 'rb').read()) is None
    garble(path)
    with pytest.raises(ValueError, match=r'noise\.png: cannot be decoded as an image'):
        read_image_checked(path)
    truncate(path)
    with pytest.raises(ValueError, match=r'noise\.png: truncated PNG'):
        read_image_checked(path)


def test_checked_loader_equals_mmcv_loader_on_good_files(ade_root):
    from mmcv.transforms import LoadImageFromFile
    results = dict(img_path=ade_file(ade_root, 'img'))
    ours = CheckedLoadImageFromFile(to_float32=True)(dict(results))
    theirs = LoadImageFromFile(to_float32=True)(dict(results))
    np.testing.assert_array_equal(ours['img'], theirs['img'])
    assert ours['ori_shape'] == theirs['ori_shape'] == (32, 32)
    with pytest.raises(ValueError, match='skip_invalid'):
        CheckedLoadImageFromFile(ignore_empty=True)


# ---------------------------------------------------------------- semantic label maps


def test_wrong_size_label_map_names_the_file(ade_root):
    cv2.imwrite(ade_file(ade_root, 'seg'), np.ones((32, 40), np.uint8))
    with pytest.raises(ValueError, match=r'ADE_train_00000001\.png: label map of size '
                       r'\(32, 40\) for an image of size \(32, 32\)'):
        ade_dataset(ade_root)[0]


def test_label_outside_classes_names_the_file(ade_root):
    seg = mmcv.imread(ade_file(ade_root, 'seg'), flag='unchanged')
    seg[0, :3] = 200  # 199 after reduce_zero_label, beyond the 150 classes
    cv2.imwrite(ade_file(ade_root, 'seg'), seg)
    with pytest.raises(ValueError, match=r'ADE_train_00000001\.png: labels \[199\] outside'):
        ade_dataset(ade_root)[0]
    seg[0, :3] = 0  # 0 becomes the ignore index 255: allowed
    cv2.imwrite(ade_file(ade_root, 'seg'), seg)
    assert (ade_dataset(ade_root)[0]['gt_seg_map'][0, :3] == 255).all()


def test_skip_invalid_draws_another_sample_and_warns(ade_root, logged):
    truncate(ade_file(ade_root, 'img', 1))
    cv2.imwrite(ade_file(ade_root, 'seg', 2), np.ones((8, 8), np.uint8))
    dataset = ade_dataset(ade_root, skip_invalid=True, test_mode=False)
    for index in range(3):  # every index yields the one good image
        assert dataset[index]['img_path'].endswith('ADE_train_00000003.jpg')
    assert all(msg.startswith('skipped: ') and level == 30 for msg, level in logged)
    out = '\n'.join(msg for msg, _ in logged)
    assert 'ADE_train_00000001.jpg: truncated JPEG' in out
    assert 'ADE_train_00000002.png: label map of size (8, 8)' in out


def test_missing_label_map_names_the_file(ade_root):
    dataset = ade_dataset(ade_root)
    os.remove(ade_file(ade_root, 'seg'))
    with pytest.raises(FileNotFoundError, match=r'ADE_train_00000001\.png: file not found'):
        dataset[0]


@pytest.mark.parametrize('damage, problem', [(truncate, 'truncated PNG'),
                                             (garble, 'cannot be decoded')])
def test_corrupt_label_map_names_the_file(ade_root, damage, problem):
    damage(ade_file(ade_root, 'seg'))
    with pytest.raises(ValueError, match=rf'ADE_train_00000001\.png: {problem}'):
        ade_dataset(ade_root)[0]


def test_checked_annotations_equal_mmseg_on_good_files(ade_root):
    from mmseg.datasets.transforms import LoadAnnotations
    dataset = ade_dataset(ade_root)
    results = dict(dataset.get_data_info(0), seg_fields=[])
    ours = checks.CheckedLoadAnnotations()(copy.deepcopy(results))
    theirs = LoadAnnotations()(copy.deepcopy(results))
    np.testing.assert_array_equal(ours['gt_seg_map'], theirs['gt_seg_map'])
    assert ours['seg_fields'] == theirs['seg_fields'] == ['gt_seg_map']


def test_skip_invalid_label_map(ade_root, logged):
    truncate(ade_file(ade_root, 'seg', 1))
    dataset = ade_dataset(ade_root, skip_invalid=True, test_mode=False)
    assert not dataset[0]['seg_map_path'].endswith('ADE_train_00000001.png')
    assert any('ADE_train_00000001.png: truncated PNG' in msg for msg, _ in logged)


# ---------------------------------------------------------------- panoptic


@pytest.fixture
def coco_root(tmp_path) -> str:
    """A fresh synthetic COCO panoptic dataset (two training images)."""
    root = str(tmp_path / 'coco')
    generate_synthetic_coco(root, num_train=2, num_val=1, img_size=40, seed=5)
    return root


def coco_json(root: str) -> str:
    return osp.join(root, 'annotations', 'panoptic_train2017.json')


def panoptic_dataset(root: str, skip_invalid: bool = False, test_mode: bool = True,
                     num_classes: int = 133) -> PanopticFormatDataset:
    pipeline = [dict(type='CheckedLoadImageFromFile', skip_invalid=skip_invalid),
                dict(type='LoadPanopticTargets', skip_invalid=skip_invalid),
                dict(type='CheckSegMap', num_classes=num_classes, skip_invalid=skip_invalid)]
    return PanopticFormatDataset(
        data_root=root, ann_file='annotations/panoptic_train2017.json',
        data_prefix=dict(img='train2017/', seg='annotations/panoptic_train2017/'),
        pipeline=pipeline, test_mode=test_mode)


def edit_json(root: str, edit) -> dict:
    """Apply ``edit(raw)`` to the panoptic JSON in place; return the edited content."""
    with open(coco_json(root)) as file:
        raw = json.load(file)
    edit(raw)
    with open(coco_json(root), 'w') as file:
        json.dump(raw, file)
    return raw


def first_png(root: str) -> str:
    return osp.join(root, 'annotations', 'panoptic_train2017', '000000000001.png')


def test_clean_panoptic_dataset_loads(coco_root):
    sample = panoptic_dataset(coco_root)[0]
    assert sample['gt_masks'].masks.shape[1:] == (40, 40)
    assert len(sample['gt_bboxes_labels']) == sample['gt_masks'].masks.shape[0] > 0


def test_unknown_category_id_fails_at_dataset_load(coco_root):
    def edit(raw):
        raw['annotations'][1]['segments_info'][0]['category_id'] = 4242

    raw = edit_json(coco_root, edit)
    image_id = raw['annotations'][1]['image_id']
    segment_id = raw['annotations'][1]['segments_info'][0]['id']
    with pytest.raises(ValueError) as error:
        panoptic_dataset(coco_root)
    message = str(error.value)
    assert 'panoptic_train2017.json' in message and '4242' in message
    assert f'image {image_id!r}' in message and f'segment {segment_id}' in message


def test_png_id_missing_from_json_names_the_png(coco_root):
    def edit(raw):
        raw['annotations'][0]['segments_info'].pop(0)

    removed = json.load(open(coco_json(coco_root)))['annotations'][0]['segments_info'][0]['id']
    edit_json(coco_root, edit)
    with pytest.raises(ValueError, match=rf'000000000001\.png: segment ids \[{removed}\] in the '
                       'PNG have no entry in segments_info'):
        panoptic_dataset(coco_root)[0]


def test_json_segment_without_pixels_gives_no_mask(coco_root):
    clean = panoptic_dataset(coco_root)[0]

    def edit(raw):
        raw['annotations'][0]['segments_info'].append(
            dict(id=999_999, category_id=1, iscrowd=0, area=12, bbox=[0, 0, 3, 4]))

    edit_json(coco_root, edit)
    sample = panoptic_dataset(coco_root)[0]  # no error: nothing to learn from, as documented
    np.testing.assert_array_equal(sample['gt_masks'].masks, clean['gt_masks'].masks)
    np.testing.assert_array_equal(sample['gt_bboxes_labels'], clean['gt_bboxes_labels'])


def test_wrong_size_panoptic_png_names_the_png(coco_root):
    ids = rgb2id(mmcv.imread(first_png(coco_root), channel_order='rgb'))
    mmcv.imwrite(id2rgb(ids[:, :30])[..., ::-1], first_png(coco_root))
    with pytest.raises(ValueError, match=r'000000000001\.png: panoptic PNG has size \(40, 30\)'):
        panoptic_dataset(coco_root)[0]


def test_corrupt_panoptic_png_names_the_png(coco_root):
    truncate(first_png(coco_root))
    with pytest.raises(ValueError, match=r'000000000001\.png: truncated PNG'):
        panoptic_dataset(coco_root)[0]
    os.remove(first_png(coco_root))
    with pytest.raises(FileNotFoundError, match=r'000000000001\.png: file not found'):
        panoptic_dataset(coco_root)[0]


def test_num_classes_below_panoptic_labels_names_the_png(coco_root):
    labels = np.unique(panoptic_dataset(coco_root)[0]['gt_seg_map'])
    top = int(labels[labels != 255].max())
    with pytest.raises(ValueError, match=rf'000000000001\.png: labels \[{top}\] outside'):
        panoptic_dataset(coco_root, num_classes=top)[0]


def test_panoptic_skip_invalid(coco_root, logged):
    truncate(first_png(coco_root))
    dataset = panoptic_dataset(coco_root, skip_invalid=True, test_mode=False)
    assert dataset[0]['seg_map_path'].endswith('000000000002.png')
    assert logged and logged[0][0].startswith('skipped: ') and 'truncated PNG' in logged[0][0]
    results = dict(seg_map_path=first_png(coco_root), segments_info=[])
    assert LoadPanopticTargets(skip_invalid=True)(results) is None
    with pytest.raises(ValueError, match='truncated PNG'):
        LoadPanopticTargets()(results)
