"""Tests of LoadPanopticTargets on the COCO panoptic sample and synthetic PNGs."""
import json
import os.path as osp
from typing import List

import mmcv
import numpy as np
import pytest
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope

from mmseg_maskformer.datasets import (LoadPanopticTargets, PanopticFormatDataset,
                                       panoptic_to_targets)
from mmseg_maskformer.registry import TRANSFORMS
from mmseg_maskformer.utils.panoptic import id2rgb, rgb2id

SAMPLE_ROOT = osp.join(osp.dirname(osp.dirname(__file__)), 'data', 'coco_panoptic_sample')
SAMPLE_PREFIX = dict(img='images/', seg='panoptic/')

#: The augmentation of the LSJ recipe at a small size. Inside the
#: ``mmseg_maskformer`` scope mmcv's RandomResize (which 'mmdet.RandomResize'
#: resolves to) must be told to build mmdet's Resize, the one handling boxes and
#: BitmapMasks.
AUGMENT = [
    dict(type='mmdet.RandomResize', scale=(256, 256), ratio_range=(0.1, 2.0),
         keep_ratio=True, resize_type='mmdet.Resize'),
    dict(type='mmdet.RandomCrop', crop_size=(256, 256), crop_type='absolute',
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='mmdet.FilterAnnotations', min_gt_bbox_wh=(1e-5, 1e-5), by_mask=True),
    dict(type='mmdet.RandomFlip', prob=0.5),
]
LOAD = [dict(type='LoadImageFromFile'), dict(type='LoadPanopticTargets')]


@pytest.fixture(autouse=True)
def our_scope() -> None:
    """Build pipelines in the ``mmseg_maskformer`` scope, as configs do."""
    init_default_scope('mmseg_maskformer')


def sample_dataset(pipeline=(), **kwargs) -> PanopticFormatDataset:
    """The two-image COCO panoptic sample."""
    return PanopticFormatDataset(data_root=SAMPLE_ROOT, ann_file='panoptic_examples.json',
                                 data_prefix=SAMPLE_PREFIX, pipeline=pipeline, **kwargs)


def sample_ids(info: dict) -> np.ndarray:
    """The segment ids (H, W) of a data info's PNG, decoded independently."""
    return rgb2id(mmcv.imread(info['seg_map_path'], channel_order='rgb'))


def write_png(path: str, ids: np.ndarray) -> str:
    """Write segment ids (H, W) as an RGB panoptic PNG."""
    mmcv.imwrite(id2rgb(ids)[..., ::-1], path)  # cv2 writes BGR
    return path


def synthetic_info(tmp_path, ids: np.ndarray, segments: List[dict], **extra) -> dict:
    """A data info over a PNG of ``ids`` written into ``tmp_path``."""
    path = write_png(str(tmp_path / 'synthetic_pan.png'), ids)
    info = dict(seg_map_path=path, height=ids.shape[0], width=ids.shape[1],
                segments_info=segments)
    info.update(extra)
    return info


def seg(seg_id: int, label: int, iscrowd: bool = False) -> dict:
    """A ``segments_info`` entry."""
    return dict(id=seg_id, label=label, iscrowd=iscrowd)


def assert_consistent(results: dict) -> None:
    """Masks, boxes, labels and the semantic map describe the same image."""
    h, w = results['img'].shape[:2]
    masks, boxes = results['gt_masks'], results['gt_bboxes']
    labels, seg_map = results['gt_bboxes_labels'], results['gt_seg_map']
    assert isinstance(masks, BitmapMasks) and isinstance(boxes, HorizontalBoxes)
    assert masks.masks.shape == (len(labels), h, w) and seg_map.shape == (h, w)
    assert boxes.tensor.shape == (len(labels), 4) and len(results['gt_ignore_flags']) == len(labels)
    assert labels.dtype == np.int64 and results['gt_ignore_flags'].dtype == bool
    assert masks.masks.sum(0).max(initial=0) <= 1  # segments do not overlap
    for mask, label in zip(masks.masks.astype(bool), labels):
        assert mask.any() and (seg_map[mask] == label).all()
    np.testing.assert_array_equal(boxes.tensor.numpy(),
                                  HorizontalBoxes.from_instance_masks(masks).tensor.numpy())


@pytest.mark.parametrize('idx, num_masks', [(0, 17), (1, 30)])
def test_sample_targets(idx: int, num_masks: int) -> None:
    results = sample_dataset(LOAD)[idx]
    info = sample_dataset().get_data_info(idx)
    ids = sample_ids(info)
    h, w = ids.shape
    masks, labels = results['gt_masks'], results['gt_bboxes_labels']
    assert (masks.height, masks.width) == (h, w) and masks.masks.dtype == np.uint8
    assert masks.masks.shape == (num_masks, h, w)
    assert results['gt_bboxes'].tensor.dtype.is_floating_point
    assert str(results['gt_bboxes'].tensor.dtype) == 'torch.float32'
    assert not results['gt_ignore_flags'].any()
    assert results['gt_seg_map'].dtype == np.uint8 and results['gt_seg_map'].shape == (h, w)
    assert 'gt_seg_map' in results['seg_fields']
    assert_consistent(results)

    not_crowd = [s for s in info['segments_info'] if not s['iscrowd']]
    assert labels.tolist() == [s['label'] for s in not_crowd]
    for mask, s in zip(masks.masks, not_crowd):
        np.testing.assert_array_equal(mask.astype(bool), ids == s['id'])
        x, y, bw, bh = s['bbox']  # the file's boxes are tight (x, y, w, h)
        mask_box = results['gt_bboxes'].tensor[not_crowd.index(s)].tolist()
        assert mask_box == [x, y, x + bw, y + bh]

    seg_map = results['gt_seg_map']
    assert (seg_map[ids == 0] == 255).all() and (ids == 0).any()
    assert ((seg_map == 255) == (ids == 0)).all()
    for s in info['segments_info']:
        if s['iscrowd']:  # no mask, but its class in the semantic map
            assert (seg_map[ids == s['id']] == s['label']).all()
            assert not any((m.astype(bool) & (ids == s['id'])).any() for m in masks.masks)


def test_loader_options_and_registration() -> None:
    built = TRANSFORMS.build(dict(type='LoadPanopticTargets', with_masks=False))
    assert isinstance(built, LoadPanopticTargets)
    results = built(sample_dataset().get_data_info(0))
    assert 'gt_masks' not in results and 'gt_bboxes' not in results
    assert 'gt_seg_map' in results
    results = LoadPanopticTargets(with_seg=False)(sample_dataset().get_data_info(0))
    assert 'gt_seg_map' not in results and 'seg_fields' not in results
    assert len(results['gt_masks']) == 17
    results = LoadPanopticTargets(ignore_index=254)(dict(sample_dataset().get_data_info(0),
                                                         seg_fields=['gt_seg_map']))
    assert (results['gt_seg_map'] == 254).any() and results['seg_fields'] == ['gt_seg_map']
    assert 'ignore_index=254' in repr(LoadPanopticTargets(ignore_index=254))


def test_mmdet_types_resolve_from_our_scope() -> None:
    from mmdet.datasets.transforms import FilterAnnotations, RandomCrop, RandomFlip, Resize
    pipeline = Compose(LOAD + AUGMENT)
    kinds = [type(t) for t in pipeline.transforms]
    assert kinds[1] is LoadPanopticTargets
    assert type(pipeline.transforms[2].resize) is Resize
    assert kinds[3:] == [RandomCrop, FilterAnnotations, RandomFlip]


def test_lsj_style_augmentation_keeps_targets_consistent() -> None:
    dataset = sample_dataset(LOAD + AUGMENT)
    np.random.seed(0)
    outputs = [dataset[i % 2] for i in range(12)]
    flips = set()
    for results in outputs:
        h, w = results['img'].shape[:2]
        assert h <= 256 and w <= 256 and results['img_shape'] == (h, w)
        assert len(results['gt_masks']) > 0
        assert_consistent(results)
        flips.add(results['flip'])
    assert flips == {True, False}


def test_dataset_to_packed_shapes_with_padding() -> None:
    pad = dict(type='mmdet.Pad', size=(256, 256), pad_val=dict(img=0, seg=255))
    results = sample_dataset(LOAD + AUGMENT + [pad])[1]
    assert results['img'].shape[:2] == (256, 256) and results['gt_seg_map'].shape == (256, 256)
    assert results['gt_masks'].masks.shape[1:] == (256, 256)


def test_empty_image(tmp_path) -> None:
    ids = np.zeros((30, 40), dtype=np.int64)
    img_path = str(tmp_path / 'empty.jpg')
    mmcv.imwrite(np.full((30, 40, 3), 128, dtype=np.uint8), img_path)
    info = synthetic_info(tmp_path, ids, [], img_path=img_path)
    results = Compose([dict(type='LoadImageFromFile'), dict(type='LoadPanopticTargets')])(
        dict(info))
    assert results['gt_masks'].masks.shape == (0, 30, 40)
    assert results['gt_bboxes'].tensor.shape == (0, 4)
    assert results['gt_bboxes_labels'].shape == (0, ) and results['gt_ignore_flags'].shape == (0, )
    assert (results['gt_seg_map'] == 255).all()
    augmented = Compose(LOAD + AUGMENT)(dict(info))
    assert augmented is not None and len(augmented['gt_masks']) == 0
    assert augmented['gt_masks'].masks.shape[1:] == augmented['img'].shape[:2]


def test_ade20k_style_category_zero_is_not_void(tmp_path) -> None:
    """ADE20K panoptic uses category id 0 (wall): only segment id 0 is void."""
    ids = np.zeros((6, 8), dtype=np.int64)
    ids[:3] = 7895160  # wall, category id 0 -> label 0
    ids[3:5] = 3290880  # floor
    ids[5, 2:6] = 4000150  # person
    segments = [seg(7895160, 0), seg(3290880, 2), seg(4000150, 4)]
    results = LoadPanopticTargets()(synthetic_info(tmp_path, ids, segments))
    seg_map = results['gt_seg_map']
    assert (seg_map[:3] == 0).all() and (seg_map[3:5] == 2).all()
    assert (seg_map[5, 2:6] == 4).all() and (seg_map[5, [0, 1, 6, 7]] == 255).all()
    assert results['gt_bboxes_labels'].tolist() == [0, 2, 4]
    assert results['gt_bboxes'].tensor.tolist()[2] == [2, 5, 6, 6]


def test_segment_absent_from_png_gives_no_mask(tmp_path) -> None:
    ids = np.zeros((4, 5), dtype=np.int64)
    ids[1:3, 1:4] = 9
    results = LoadPanopticTargets()(synthetic_info(tmp_path, ids, [seg(9, 3), seg(11, 1)]))
    assert results['gt_bboxes_labels'].tolist() == [3]
    assert results['gt_bboxes'].tensor.tolist() == [[1, 1, 4, 3]]
    assert set(np.unique(results['gt_seg_map']).tolist()) == {3, 255}


def test_png_id_missing_from_segments_info_raises(tmp_path) -> None:
    ids = np.zeros((4, 5), dtype=np.int64)
    ids[0, 0], ids[1, 1] = 9, 12
    info = synthetic_info(tmp_path, ids, [seg(9, 3)])
    with pytest.raises(ValueError, match='synthetic_pan.png') as err:
        LoadPanopticTargets()(info)
    assert '[12]' in str(err.value) and 'segments_info' in str(err.value)


@pytest.mark.parametrize('extra, name', [
    (dict(height=5), 'height/width'),
    (dict(ori_shape=(4, 6)), 'ori_shape'),
    (dict(img_shape=(8, 10)), 'img_shape'),
])
def test_png_size_mismatch_raises(tmp_path, extra: dict, name: str) -> None:
    info = synthetic_info(tmp_path, np.zeros((4, 5), dtype=np.int64), [], **extra)
    with pytest.raises(ValueError, match='synthetic_pan.png') as err:
        LoadPanopticTargets()(info)
    assert name in str(err.value) and '(4, 5)' in str(err.value)


def test_semantic_map_may_follow_a_test_time_resize(tmp_path) -> None:
    """Evaluation pipelines load the semantic map after Resize, at the original size."""
    ids = np.ones((4, 5), dtype=np.int64)
    info = synthetic_info(tmp_path, ids, [seg(1, 3)], img_shape=(8, 10), ori_shape=(4, 5))
    results = LoadPanopticTargets(with_masks=False)(info)
    assert results['gt_seg_map'].shape == (4, 5) and 'gt_masks' not in results
    with pytest.raises(ValueError, match='ori_shape'):
        info = synthetic_info(tmp_path, ids, [seg(1, 3)], ori_shape=(8, 10))
        LoadPanopticTargets(with_masks=False)(info)


def test_label_equal_to_ignore_index_raises(tmp_path) -> None:
    ids = np.ones((2, 2), dtype=np.int64)
    with pytest.raises(ValueError, match='synthetic_pan.png'):
        LoadPanopticTargets()(synthetic_info(tmp_path, ids, [seg(1, 255)]))


def test_missing_keys_raise() -> None:
    with pytest.raises(KeyError, match='seg_map_path'):
        LoadPanopticTargets()(dict(segments_info=[]))
    with pytest.raises(KeyError, match='segments_info'):
        LoadPanopticTargets()(dict(seg_map_path='x.png'))


def test_panoptic_to_targets_wide_labels() -> None:
    """Labels beyond 255 switch the semantic map to int32."""
    ids = np.array([[0, 1], [2, 2]])
    masks, labels, seg_map = panoptic_to_targets(ids, [seg(1, 300), seg(2, 7, iscrowd=True)])
    assert seg_map.dtype == np.int32 and seg_map.tolist() == [[255, 300], [7, 7]]
    assert masks.shape == (1, 2, 2) and labels.tolist() == [300]


def test_end_to_end_json_png_on_disk(tmp_path) -> None:
    """A synthetic dataset with ADE20K-style metadata read through the dataset."""
    ids = np.zeros((6, 8), dtype=np.int64)
    ids[:, :4], ids[:, 4:] = 5, 6
    write_png(str(tmp_path / 'pan' / 'a.png'), ids)
    mmcv.imwrite(np.zeros((6, 8, 3), dtype=np.uint8), str(tmp_path / 'img' / 'a.jpg'))
    content = dict(
        images=[dict(id='a', file_name='a.jpg', height=6, width=8)],
        annotations=[dict(image_id='a', file_name='a.png', segments_info=[
            dict(id=5, category_id=0, iscrowd=0), dict(id=6, category_id=12, iscrowd=0)])],
        categories=[dict(id=0, name='wall', isthing=0), dict(id=12, name='person', isthing=1)])
    with open(tmp_path / 'ann.json', 'w') as f:
        json.dump(content, f)
    dataset = PanopticFormatDataset(ann_file='ann.json', data_root=str(tmp_path),
                                    data_prefix=dict(img='img/', seg='pan/'), pipeline=LOAD)
    results = dataset[0]
    assert results['gt_bboxes_labels'].tolist() == [0, 1]
    assert results['gt_seg_map'][:, :4].max() == 0 and results['gt_seg_map'][:, 4:].min() == 1
