"""Tests of PanopticFormatDataset on the COCO panoptic sample and synthetic files."""
import copy
import json
import os.path as osp
from typing import Optional

import pytest
from mmengine.registry import init_default_scope

from mmseg_maskformer.datasets import PanopticFormatDataset, categories_to_metainfo
from mmseg_maskformer.registry import DATASETS

SAMPLE_ROOT = osp.join(osp.dirname(osp.dirname(__file__)), 'data', 'coco_panoptic_sample')
SAMPLE_PREFIX = dict(img='images/', seg='panoptic/')


def sample_dataset(**kwargs) -> PanopticFormatDataset:
    """The two-image COCO panoptic sample."""
    return PanopticFormatDataset(data_root=SAMPLE_ROOT, ann_file='panoptic_examples.json',
                                 data_prefix=SAMPLE_PREFIX, **kwargs)


def sample_json() -> dict:
    """A copy of the sample's annotation file."""
    with open(osp.join(SAMPLE_ROOT, 'panoptic_examples.json')) as f:
        return json.load(f)


def write_json(path, content: dict) -> str:
    """Write ``content`` to ``path`` and return it as a string."""
    with open(path, 'w') as f:
        json.dump(content, f)
    return str(path)


def tmp_dataset(tmp_path, content: dict, name: str = 'panoptic.json',
                metainfo: Optional[dict] = None, **kwargs) -> PanopticFormatDataset:
    """A dataset over ``content`` written into ``tmp_path``."""
    ann_file = write_json(tmp_path / name, content)
    return PanopticFormatDataset(ann_file=ann_file, data_root=str(tmp_path),
                                 data_prefix=dict(img='img/', seg='pan/'),
                                 metainfo=metainfo, **kwargs)


# ADE20K panoptic as written by the official preparation script: ids 0..149 in
# the order of the 150 semantic classes, things interleaved with stuff, string
# image ids, '.jpg' images and '.png' panoptic maps. A few rows suffice here.
ADE_CATEGORIES = [
    dict(name='wall', id=0, isthing=0, color=[120, 120, 120]),
    dict(name='building', id=1, isthing=0, color=[180, 120, 120]),
    dict(name='bed', id=7, isthing=1, color=[204, 5, 255]),
    dict(name='floor', id=3, isthing=0, color=[80, 50, 50]),
    dict(name='person', id=12, isthing=1, color=[150, 5, 61]),
]
ADE_JSON = dict(
    images=[dict(id='ADE_val_00000001', file_name='ADE_val_00000001.jpg', width=8, height=6)],
    annotations=[dict(image_id='ADE_val_00000001', file_name='ADE_val_00000001.png',
                      segments_info=[
                          dict(id=7895160, category_id=0, area=20, bbox=[0, 0, 8, 3], iscrowd=0),
                          dict(id=3290880, category_id=3, area=16, bbox=[0, 3, 8, 2], iscrowd=0),
                          dict(id=4000150, category_id=12, area=4, bbox=[2, 5, 4, 1], iscrowd=0),
                      ])],
    categories=ADE_CATEGORIES)


def test_sample_metainfo() -> None:
    meta = sample_dataset().metainfo
    assert len(meta['classes']) == 133
    assert len(meta['thing_classes']) == 80 and len(meta['stuff_classes']) == 53
    assert meta['is_thing'] == (True, ) * 80 + (False, ) * 53
    assert list(meta['category_ids']) == sorted(meta['category_ids'])
    assert meta['classes'][:80] == meta['thing_classes']
    assert meta['classes'][80:] == meta['stuff_classes']
    assert meta['classes'][0] == 'person' and meta['category_ids'][0] == 1
    assert len(meta['palette']) == 133 and meta['palette'][0] == [220, 20, 60]


def test_sample_data_infos() -> None:
    dataset = sample_dataset()
    assert len(dataset) == 2
    meta = dataset.metainfo
    label_of = {cat_id: label for label, cat_id in enumerate(meta['category_ids'])}
    raw = sample_json()
    counts = []
    for idx, (image, ann) in enumerate(zip(raw['images'], raw['annotations'])):
        info = dataset.get_data_info(idx)
        assert info['img_id'] == image['id']
        assert (info['height'], info['width']) == (image['height'], image['width'])
        assert info['img_path'] == osp.join(SAMPLE_ROOT, 'images', image['file_name'])
        assert info['seg_map_path'] == osp.join(SAMPLE_ROOT, 'panoptic', ann['file_name'])
        assert osp.isfile(info['img_path']) and osp.isfile(info['seg_map_path'])
        counts.append(len(info['segments_info']))
        for seg, raw_seg in zip(info['segments_info'], ann['segments_info']):
            assert seg['id'] == raw_seg['id']
            assert seg['category_id'] == raw_seg['category_id']
            assert seg['label'] == label_of[raw_seg['category_id']]
            assert seg['isthing'] == meta['is_thing'][seg['label']]
            assert seg['iscrowd'] == bool(raw_seg['iscrowd'])
            assert seg['area'] == raw_seg['area'] and seg['bbox'] == raw_seg['bbox']
    assert counts == [18, 32]
    crowd = [[s for s in dataset.get_data_info(i)['segments_info'] if s['iscrowd']]
             for i in range(2)]
    assert [len(c) for c in crowd] == [1, 2]
    assert crowd[0][0]['category_id'] == 1 and crowd[0][0]['label'] == 0
    stuff = [s for s in dataset.get_data_info(0)['segments_info'] if not s['isthing']]
    assert stuff and all(s['label'] >= 80 for s in stuff)


def test_build_from_registry_in_scope() -> None:
    init_default_scope('mmseg_maskformer')
    dataset = DATASETS.build(dict(type='PanopticFormatDataset', data_root=SAMPLE_ROOT,
                                  ann_file='panoptic_examples.json', data_prefix=SAMPLE_PREFIX))
    assert isinstance(dataset, PanopticFormatDataset) and len(dataset) == 2


def test_default_data_prefix_is_coco_val_layout() -> None:
    dataset = PanopticFormatDataset(data_root=SAMPLE_ROOT, ann_file='panoptic_examples.json')
    info = dataset.get_data_info(0)
    assert info['img_path'] == osp.join(SAMPLE_ROOT, 'val2017', '000000142238.jpg')
    assert info['seg_map_path'] == osp.join(SAMPLE_ROOT, 'annotations', 'panoptic_val2017',
                                            '000000142238.png')


def test_data_prefix_needs_img_and_seg() -> None:
    with pytest.raises(ValueError, match='seg'):
        PanopticFormatDataset(data_root=SAMPLE_ROOT, ann_file='panoptic_examples.json',
                              data_prefix=dict(img='images/'))


def test_lazy_init_fills_metainfo_on_full_init() -> None:
    dataset = sample_dataset(lazy_init=True)
    assert 'classes' not in dataset.metainfo
    dataset.full_init()
    assert len(dataset.metainfo['classes']) == 133 and len(dataset) == 2


def test_matching_metainfo_is_accepted_and_palette_overridable() -> None:
    classes = sample_dataset().metainfo['classes']
    palette = [[0, 0, 0]] * 133
    meta = sample_dataset(metainfo=dict(classes=classes, palette=palette, extra='x')).metainfo
    assert meta['classes'] == classes and meta['palette'] == palette and meta['extra'] == 'x'


@pytest.mark.parametrize('metainfo, detail', [
    (dict(classes=('person', 'bicycle')), '2 entries given, 133 in the file'),
    (dict(thing_classes=('bicycle', ) * 80), "position 0: 'bicycle' given, 'person'"),
    (dict(palette=[[0, 0, 0]]), '1 colours'),
])
def test_contradicting_metainfo_raises(metainfo: dict, detail: str) -> None:
    with pytest.raises(ValueError, match='panoptic_examples.json') as err:
        sample_dataset(metainfo=metainfo)
    assert detail in str(err.value)


def test_ade20k_style_metadata(tmp_path) -> None:
    dataset = tmp_dataset(tmp_path, ADE_JSON)
    meta = dataset.metainfo
    assert meta['category_ids'] == (0, 1, 3, 7, 12)
    assert meta['classes'] == ('wall', 'building', 'floor', 'bed', 'person')
    assert meta['is_thing'] == (False, False, False, True, True)
    assert meta['thing_classes'] == ('bed', 'person')
    assert meta['stuff_classes'] == ('wall', 'building', 'floor')
    assert meta['palette'][2] == [80, 50, 50]
    info = dataset.get_data_info(0)
    assert info['img_id'] == 'ADE_val_00000001'
    assert info['img_path'] == osp.join(str(tmp_path), 'img', 'ADE_val_00000001.jpg')
    assert info['seg_map_path'] == osp.join(str(tmp_path), 'pan', 'ADE_val_00000001.png')
    assert [s['label'] for s in info['segments_info']] == [0, 2, 4]
    assert [s['isthing'] for s in info['segments_info']] == [False, False, True]


def test_full_ade20k_category_layout() -> None:
    """150 categories with ids 0..149 (100 things, 50 stuff): labels equal the ids."""
    things = {i for i in range(150) if i % 3 != 2}
    categories = [dict(id=i, name=f'c{i}', isthing=int(i in things)) for i in range(150)]
    meta = categories_to_metainfo(categories[::-1], 'ade.json')
    assert meta['category_ids'] == tuple(range(150))
    assert sum(meta['is_thing']) == 100 and len(meta['stuff_classes']) == 50
    assert meta['is_thing'] == tuple(i in things for i in range(150))
    assert 'palette' not in meta


def test_filter_empty_gt(tmp_path) -> None:
    content = copy.deepcopy(ADE_JSON)
    content['images'].append(dict(id='crowd_only', file_name='c.jpg', width=4, height=4))
    content['annotations'].append(dict(image_id='crowd_only', file_name='c.png', segments_info=[
        dict(id=5, category_id=12, area=2, bbox=[0, 0, 1, 2], iscrowd=1)]))
    content['images'].append(dict(id='empty', file_name='e.jpg', width=4, height=4))
    content['annotations'].append(dict(image_id='empty', file_name='e.png', segments_info=[]))
    filter_cfg = dict(filter_empty_gt=True)
    assert len(tmp_dataset(tmp_path, content)) == 3
    kept = tmp_dataset(tmp_path, content, filter_cfg=filter_cfg)
    assert [kept.get_data_info(i)['img_id'] for i in range(len(kept))] == ['ADE_val_00000001']
    assert len(tmp_dataset(tmp_path, content, filter_cfg=filter_cfg, test_mode=True)) == 3
    assert len(tmp_dataset(tmp_path, content, filter_cfg=dict(min_size=5))) == 1


def _unknown_category(c: dict) -> None:
    c['annotations'][0]['segments_info'][1]['category_id'] = 999


def _image_without_annotation(c: dict) -> None:
    c['images'].append(dict(id=7, file_name='7.jpg', width=4, height=4))


def _annotation_without_image(c: dict) -> None:
    c['annotations'].append(dict(image_id=7, file_name='7.png', segments_info=[]))


def _duplicate_image(c: dict) -> None:
    c['images'].append(dict(c['images'][0]))


def _duplicate_annotation(c: dict) -> None:
    c['annotations'].append(copy.deepcopy(c['annotations'][0]))


def _duplicate_segment(c: dict) -> None:
    segments = c['annotations'][1]['segments_info']
    segments.append(dict(segments[3]))


def _duplicate_category(c: dict) -> None:
    c['categories'].append(dict(c['categories'][5]))


def _void_segment_id(c: dict) -> None:
    c['annotations'][0]['segments_info'][0]['id'] = 0


def _no_categories(c: dict) -> None:
    del c['categories']


@pytest.mark.parametrize('corrupt, message', [
    (_unknown_category, 'unknown category_id 999'),
    (_image_without_annotation, 'have no annotation entry, e.g. image id 7'),
    (_annotation_without_image, 'refer to no image entry, e.g. image_id 7'),
    (_duplicate_image, 'duplicate image id 142238'),
    (_duplicate_annotation, 'duplicate annotation image_id 142238'),
    (_duplicate_segment, 'duplicate segment id'),
    (_duplicate_category, 'duplicate category id 6'),
    (_void_segment_id, 'segment with id 0'),
    (_no_categories, "missing ['categories']"),
])
def test_invalid_annotation_files_raise(tmp_path, corrupt, message: str) -> None:
    content = sample_json()
    corrupt(content)
    with pytest.raises(ValueError, match='broken_panoptic.json') as err:
        tmp_dataset(tmp_path, content, name='broken_panoptic.json')
    assert message in str(err.value)
