"""Cityscapes panoptic/instance and Mapillary Vistas panoptic through their dataset configs.

Tiny copies in the official formats are written here (Cityscapes: raw 16-bit
instanceIds PNGs, converted by our tools; Mapillary: a v1.2 panoptic JSON and
PNGs), then loaded with the datasets and pipelines of the ``_base_`` configs.
"""
import json
import os.path as osp
from typing import Dict, List

import numpy as np
import pytest
import torch
from mmengine import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from PIL import Image

from mmseg_maskformer.datasets.converters.cityscapes_panoptic import (convert_instance_split,
                                                                      convert_panoptic_split)
from mmseg_maskformer.datasets.converters.semantic_labels import CITYSCAPES_LABEL_TO_TRAIN_ID
from mmseg_maskformer.evaluation.metrics import PanopticQualityMetric
from mmseg_maskformer.registry import DATASETS, METRICS
from mmseg_maskformer.utils.panoptic import INSTANCE_OFFSET, id2rgb

CONFIGS = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
                   '_base_', 'datasets')
H, W = 64, 128
CITYSCAPES_THINGS = ('person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle')


def street(seed: int) -> np.ndarray:
    """Raw Cityscapes instanceIds (H, W): stuff, void, instances and a crowd group."""
    raw = np.full((H, W), 7, np.int64)  # road
    raw[:20] = 23  # sky
    raw[20:30] = 21  # vegetation
    raw[:, :3] = 0  # unlabeled: void
    raw[44:52, 90:110] = 9  # parking: void
    raw[22:50, 8 + seed:18 + seed] = 24001  # person
    raw[30:50, 40:70] = 26  # car group: crowd
    raw[34:46, 72:88] = 26001 + seed  # car
    raw[52:60, 20:30] = 33002  # bicycle
    raw[36:44, 112:120] = 30001  # trailer: void (ignoreInEval)
    return raw


CITYSCAPES_RAW = {'val': [('frankfurt', 'frankfurt_000000_000294', 0),
                          ('munster', 'munster_000001_000019', 3)],
                  'train': [('zurich', 'zurich_000000_000019', 5)]}


@pytest.fixture(autouse=True)
def our_scope() -> None:
    init_default_scope('mmseg_maskformer')


@pytest.fixture(scope='module')
def cityscapes_root(tmp_path_factory) -> str:
    """Raw images and instanceIds PNGs, converted by our panoptic and instance tools."""
    root = tmp_path_factory.mktemp('cityscapes')
    for split, images in CITYSCAPES_RAW.items():
        for city, image_id, seed in images:
            for folder in ('gtFine', 'leftImg8bit'):
                (root / folder / split / city).mkdir(parents=True, exist_ok=True)
            Image.fromarray(street(seed).astype(np.uint16)).save(
                root / 'gtFine' / split / city / f'{image_id}_gtFine_instanceIds.png')
            Image.fromarray(np.full((H, W, 3), 30 * seed, np.uint8)).save(
                root / 'leftImg8bit' / split / city / f'{image_id}_leftImg8bit.png')
        convert_panoptic_split(str(root), split)
        convert_instance_split(str(root), split)
    return str(root)


def config_dataset(config: str, loader: str, data_root: str, pipeline=None):
    """The dataset of ``loader`` in ``config``, rooted at ``data_root``."""
    cfg = Config.fromfile(osp.join(CONFIGS, config))
    dataset_cfg = cfg[loader].dataset.copy()
    dataset_cfg.data_root = data_root
    if pipeline is not None:
        dataset_cfg.pipeline = pipeline
    return cfg, DATASETS.build(dataset_cfg)


def expected_semantic(raw: np.ndarray) -> np.ndarray:
    """Train ids of a raw map (as labelTrainIds), 255 elsewhere."""
    label_ids = np.where(raw < 1000, raw, raw // 1000)
    lut = np.full(64, 255, np.int64)
    for label_id, train_id in CITYSCAPES_LABEL_TO_TRAIN_ID.items():
        lut[label_id] = train_id
    return lut[label_ids]


def non_crowd_segments(raw: np.ndarray) -> List[int]:
    """Raw values that become mask targets: evaluated instances and evaluated stuff."""
    kept = []
    for value in np.unique(raw).tolist():
        if value >= 1000:
            if value // 1000 in CITYSCAPES_LABEL_TO_TRAIN_ID:
                kept.append(value)
        elif CITYSCAPES_LABEL_TO_TRAIN_ID.get(value, 255) < 11:  # train ids 0..10: stuff
            kept.append(value)
    return kept


def test_cityscapes_panoptic_metainfo_and_paths(cityscapes_root):
    cfg, dataset = config_dataset('cityscapes_panoptic.py', 'val_dataloader', cityscapes_root)
    meta = dataset.metainfo
    assert len(meta['classes']) == cfg.num_classes == 19
    assert meta['thing_classes'] == CITYSCAPES_THINGS
    assert [k for k, thing in enumerate(meta['is_thing']) if thing] == cfg.thing_class_ids
    assert meta['category_ids'] == tuple(sorted(CITYSCAPES_LABEL_TO_TRAIN_ID))
    assert len(dataset) == 2
    for k, (city, image_id, _) in enumerate(CITYSCAPES_RAW['val']):
        info = dataset.get_data_info(k)
        assert info['img_path'] == osp.join(cityscapes_root, 'leftImg8bit', 'val', city,
                                            f'{image_id}_leftImg8bit.png')
        assert info['img_id'] == image_id
        packed = dataset[k]  # the image was found, read and resized to 1024x2048
        assert packed['inputs'].shape == (3, 1024, 2048)
        assert packed['data_samples'].ori_shape == (H, W)
        assert packed['data_samples'].gt_sem_seg.data.shape == (1, H, W)


def test_cityscapes_panoptic_training_targets(cityscapes_root):
    """Masks and labels of the non-crowd segments; train-id semantic map with 255 void."""
    cfg = Config.fromfile(osp.join(CONFIGS, 'cityscapes_panoptic.py'))
    load = cfg.train_pipeline[:2]
    assert [step['type'] for step in load] == ['CheckedLoadImageFromFile', 'LoadPanopticTargets']
    _, dataset = config_dataset('cityscapes_panoptic.py', 'train_dataloader', cityscapes_root,
                                pipeline=load)
    results = dataset[0]
    raw = street(CITYSCAPES_RAW['train'][0][2])
    np.testing.assert_array_equal(results['gt_seg_map'], expected_semantic(raw))
    values = non_crowd_segments(raw)
    expected_labels = [CITYSCAPES_LABEL_TO_TRAIN_ID[v if v < 1000 else v // 1000]
                       for v in values]
    assert sorted(results['gt_bboxes_labels'].tolist()) == sorted(expected_labels)
    masks = results['gt_masks'].masks.astype(bool)
    expected_masks = {v: raw == v for v in values}
    for mask, label in zip(masks, results['gt_bboxes_labels'].tolist()):
        matches = [v for v, m in expected_masks.items() if np.array_equal(m, mask)]
        assert len(matches) == 1 and expected_labels[values.index(matches[0])] == label


def test_cityscapes_panoptic_train_pipeline_crops(cityscapes_root):
    """The official augmentation yields a 512x1024 crop with consistent targets."""
    _, dataset = config_dataset('cityscapes_panoptic.py', 'train_dataloader', cityscapes_root)
    packed = dataset[0]
    assert packed['inputs'].shape == (3, 512, 1024)
    sample = packed['data_samples']
    assert sample.gt_instances.masks.shape[-2:] == (512, 1024)
    assert int(sample.gt_instances.labels.max()) < 19


def perfect_prediction(info: dict, raw: np.ndarray) -> np.ndarray:
    """The ground truth in the model's encoding; crowd and void pixels predicted void."""
    pred = np.full(raw.shape, 19, np.int64)
    for k, seg in enumerate(info['segments_info'], start=1):
        if not seg['iscrowd']:
            pred[raw == seg['id']] = seg['label'] + (k * INSTANCE_OFFSET if seg['isthing'] else 0)
    return pred


def test_cityscapes_panoptic_perfect_predictions_score_pq_100(cityscapes_root):
    cfg, dataset = config_dataset('cityscapes_panoptic.py', 'val_dataloader', cityscapes_root)
    assert cfg.val_evaluator[0]['type'] == 'PanopticQualityMetric'
    metric = PanopticQualityMetric()
    metric.dataset_meta = dataset.metainfo
    for k, (_, _, seed) in enumerate(CITYSCAPES_RAW['val']):
        packed = dataset[k]
        sample = SegDataSample(metainfo=packed['data_samples'].metainfo)
        pred = perfect_prediction(dataset.get_data_info(k), street(seed))
        sample.pred_panoptic_seg = PixelData(sem_seg=torch.from_numpy(pred)[None])
        metric.process({}, [sample.to_dict()])
    scores = metric.evaluate(2)
    assert scores['PQ'] == pytest.approx(100.0)
    assert scores['PQ_th'] == pytest.approx(100.0)


def test_cityscapes_instance_config_labels(cityscapes_root):
    """The instance config's classes map the 8 label-id categories to labels 0..7."""
    cfg, dataset = config_dataset('cityscapes_instance.py', 'val_dataloader', cityscapes_root,
                                  pipeline=[])
    assert dataset.metainfo['classes'] == CITYSCAPES_THINGS == cfg.classes
    info = dataset.get_data_info(0)
    assert info['img_path'] == osp.join(cityscapes_root, 'leftImg8bit', 'val', 'frankfurt',
                                        'frankfurt_000000_000294_leftImg8bit.png')
    raw = street(0)
    expected = {(0, False), (2, True), (2, False), (7, False)}  # person, car group, car, bicycle
    assert {(ann['bbox_label'], bool(ann['ignore_flag'])) for ann in info['instances']} == \
        expected
    person = next(ann for ann in info['instances'] if ann['bbox_label'] == 0)
    ys, xs = np.nonzero(raw == 24001)
    assert person['bbox'] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]  # xyxy


#: Mapillary Vistas v1.2 category ids that are things (``isthing`` in panoptic_2018.json).
MAPILLARY_THING_IDS = {1, 2, 9, 20, 21, 22, 23, 24, *range(33, 44), *range(45, 59), 60, 61, 62,
                       63}
#: Per image: (category id, box (y0, y1, x0, x1)) of its segments, in painting order.
MAPILLARY_IMAGES = {
    'training': {'tr_key_a': [(14, (0, H, 0, W)), (28, (0, 20, 0, W)), (56, (30, 50, 10, 40)),
                              (56, (30, 50, 50, 80)), (20, (25, 60, 90, 100))],
                 'tr_key_b': [(31, (0, H, 0, W)), (65, (50, H, 0, W))]},
    'validation': {'va_key_a': [(14, (10, H, 0, W)), (9, (40, 50, 0, 60)),
                                (55, (20, 45, 70, 120)), (64, (60, H, 0, W))]},
}


def mapillary_ids(segments: List[tuple]) -> np.ndarray:
    """Segment ids (H, W): segment k (1-based, times 7) painted over the earlier ones."""
    ids = np.zeros((H, W), np.int64)
    for k, (_, (y0, y1, x0, x1)) in enumerate(segments, start=1):
        ids[y0:y1, x0:x1] = 7 * k
    return ids


@pytest.fixture(scope='module')
def mapillary_root(tmp_path_factory) -> str:
    """Images and v1.2 panoptic JSON + PNGs, with the 65 official categories."""
    root = tmp_path_factory.mktemp('mapillary')
    classes = Config.fromfile(osp.join(CONFIGS, 'mapillary_v1_65.py')).classes
    categories = [dict(id=k + 1, name=name, isthing=int(k + 1 in MAPILLARY_THING_IDS),
                       supercategory='', color=[k, k, k]) for k, name in enumerate(classes)]
    for split, images in MAPILLARY_IMAGES.items():
        pan_dir = root / split / 'v1.2' / 'panoptic'
        pan_dir.mkdir(parents=True)
        (root / split / 'images').mkdir(parents=True)
        entries: Dict[str, list] = dict(images=[], annotations=[])
        for key, segments in images.items():
            Image.fromarray(np.full((H, W, 3), 60, np.uint8)).save(
                root / split / 'images' / f'{key}.jpg')
            ids = mapillary_ids(segments)
            Image.fromarray(id2rgb(ids)).save(pan_dir / f'{key}.png')
            entries['images'].append(dict(id=key, file_name=f'{key}.jpg', height=H, width=W))
            infos = [dict(id=7 * k, category_id=cat, iscrowd=0, area=int((ids == 7 * k).sum()))
                     for k, (cat, _) in enumerate(segments, start=1) if (ids == 7 * k).any()]
            entries['annotations'].append(dict(image_id=key, file_name=f'{key}.png',
                                               segments_info=infos))
        with open(pan_dir / 'panoptic_2018.json', 'w') as file:
            json.dump(dict(entries, categories=categories), file)
    return str(root)


def test_mapillary_panoptic_metainfo_and_targets(mapillary_root):
    """Labels are category id - 1; the config's thing ids are the file's things."""
    cfg = Config.fromfile(osp.join(CONFIGS, 'mapillary_v1_65_panoptic.py'))
    _, dataset = config_dataset('mapillary_v1_65_panoptic.py', 'train_dataloader',
                                mapillary_root, pipeline=cfg.train_pipeline[:2])
    meta = dataset.metainfo
    assert meta['classes'] == tuple(Config.fromfile(osp.join(CONFIGS, 'mapillary_v1_65.py'))
                                    .classes)
    assert len(meta['classes']) == cfg.num_classes
    assert [k for k, thing in enumerate(meta['is_thing']) if thing] == cfg.thing_class_ids
    assert len(dataset) == 2
    for k, (key, segments) in enumerate(MAPILLARY_IMAGES['training'].items()):
        assert dataset.get_data_info(k)['img_path'] == osp.join(mapillary_root, 'training',
                                                                'images', f'{key}.jpg')
        results = dataset[k]
        ids = mapillary_ids(segments)
        semantic = np.full((H, W), 255, np.int64)
        for n, (cat, _) in enumerate(segments, start=1):
            semantic[ids == 7 * n] = cat - 1
        np.testing.assert_array_equal(results['gt_seg_map'], semantic)
        present = [cat - 1 for n, (cat, _) in enumerate(segments, start=1) if (ids == 7 * n).any()]
        assert sorted(results['gt_bboxes_labels'].tolist()) == sorted(present)


def test_mapillary_panoptic_perfect_predictions_score_pq_100(mapillary_root):
    _, dataset = config_dataset('mapillary_v1_65_panoptic.py', 'val_dataloader', mapillary_root)
    metric = PanopticQualityMetric()
    metric.dataset_meta = dataset.metainfo
    packed = dataset[0]
    assert packed['inputs'].shape == (3, 1024, 2048)  # long side 2048
    ids = mapillary_ids(MAPILLARY_IMAGES['validation']['va_key_a'])
    pred = np.full((H, W), 65, np.int64)
    for k, seg in enumerate(dataset.get_data_info(0)['segments_info'], start=1):
        pred[ids == seg['id']] = seg['label'] + (k * INSTANCE_OFFSET if seg['isthing'] else 0)
    sample = SegDataSample(metainfo=packed['data_samples'].metainfo)
    sample.pred_panoptic_seg = PixelData(sem_seg=torch.from_numpy(pred)[None])
    metric.process({}, [sample.to_dict()])
    scores = metric.evaluate(1)
    assert scores['PQ'] == scores['PQ_th'] == scores['PQ_st'] == pytest.approx(100.0)


@pytest.mark.parametrize('config', ['cityscapes_panoptic.py', 'cityscapes_instance.py',
                                    'mapillary_v1_65_panoptic.py'])
def test_pipelines_and_evaluators_build(config):
    cfg = Config.fromfile(osp.join(CONFIGS, config))
    for loader in ('train_dataloader', 'val_dataloader'):
        Compose(cfg[loader].dataset.pipeline)
    evaluators = cfg.val_evaluator if isinstance(cfg.val_evaluator, list) else [cfg.val_evaluator]
    for metric in evaluators:
        assert METRICS.get(metric['type']) is not None, metric['type']


def test_cityscapes_instance_training_sample_and_metric(cityscapes_root):
    """A training crop of 512x1024 with the instances; the metric reads the val file."""
    cfg, dataset = config_dataset('cityscapes_instance.py', 'train_dataloader', cityscapes_root)
    sample = dataset[0]['data_samples']
    assert sample.gt_instances.masks.shape[-2:] == (512, 1024)
    assert set(sample.gt_instances.labels.tolist()) <= {0, 2, 7}
    metric_cfg = cfg.val_evaluator.copy()
    metric_cfg.ann_file = osp.join(cityscapes_root, 'annotations',
                                   'instancesonly_filtered_gtFine_val.json')
    metric = METRICS.build(metric_cfg)
    assert sorted(metric._coco_api.cats) == [24, 25, 26, 27, 28, 31, 32, 33]
