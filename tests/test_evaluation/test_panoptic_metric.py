"""PanopticQualityMetric on the COCO panoptic fixture: scores, written files, errors."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmseg_maskformer.datasets.panoptic import PanopticFormatDataset
from mmseg_maskformer.evaluation.functional import (PQStat, pq_compute, pq_compute_single,
                                                    read_panoptic_png, summarize_pq)
from mmseg_maskformer.evaluation.metrics import PanopticQualityMetric, panoptic_to_coco
from mmseg_maskformer.registry import METRICS
from mmseg_maskformer.utils.panoptic import INSTANCE_OFFSET

SAMPLE = Path(__file__).resolve().parents[1] / 'data' / 'coco_panoptic_sample'
GT_JSON = SAMPLE / 'panoptic_examples.json'
GT_DIR = SAMPLE / 'panoptic'


@pytest.fixture(scope='module')
def dataset():
    return PanopticFormatDataset(ann_file=str(GT_JSON), data_root='',
                                 data_prefix=dict(img=str(SAMPLE / 'images'), seg=str(GT_DIR)),
                                 test_mode=True)


def encode_gt(info: dict, meta: dict, drop=()) -> np.ndarray:
    """The GT of a data info in the model's encoding (H, W); ``drop``: ids made void."""
    gt = read_panoptic_png(info['seg_map_path'])
    num_classes = len(meta['classes'])
    pan = np.full(gt.shape, num_classes, np.int64)
    instance = 0
    for seg in info['segments_info']:
        if seg['id'] in drop:
            continue
        label = meta['category_ids'].index(seg['category_id'])
        if meta['is_thing'][label]:
            instance += 1
            pan[gt == seg['id']] = label + instance * INSTANCE_OFFSET
        else:
            pan[gt == seg['id']] = label
    return pan


def make_sample(info: dict, pan: np.ndarray) -> dict:
    """A prediction data sample as mmengine hands it to metrics (``to_dict()``)."""
    sample = SegDataSample(metainfo=dict(
        img_id=info['img_id'], img_path=info['img_path'], seg_map_path=info['seg_map_path'],
        segments_info=info['segments_info'], ori_shape=pan.shape))
    sample.pred_panoptic_seg = PixelData(sem_seg=torch.from_numpy(pan)[None])
    return sample.to_dict()


def run_metric(metric, dataset, pans):
    metric.dataset_meta = dataset.metainfo
    samples = [make_sample(dataset.get_data_info(i), pan) for i, pan in enumerate(pans)]
    metric.process({}, samples[:1])
    metric.process({}, samples[1:])
    return metric.evaluate(len(samples))


def test_gt_as_prediction_scores_100(dataset):
    meta = dataset.metainfo
    pans = [encode_gt(dataset.get_data_info(i), meta) for i in range(len(dataset))]
    init_default_scope('mmseg_maskformer')  # another test may have left another scope
    metrics = run_metric(METRICS.build(dict(type='PanopticQualityMetric')), dataset, pans)
    assert set(metrics) == {'PQ', 'SQ', 'RQ', 'PQ_th', 'SQ_th', 'RQ_th', 'PQ_st', 'SQ_st',
                            'RQ_st'}
    assert all(value == 100.0 for value in metrics.values())


def test_dropped_segment_matches_pq_compute_single(dataset):
    meta = dataset.metainfo
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    dropped_seg = next(s for s in infos[1]['segments_info']
                       if not s['iscrowd'] and not s['isthing'])
    dropped = dropped_seg['id']
    pans = [encode_gt(infos[0], meta), encode_gt(infos[1], meta, drop={dropped})]
    metrics = run_metric(PanopticQualityMetric(), dataset, pans)

    # the same prediction written in COCO form by hand and scored directly
    categories = {c['id']: c for c in json.loads(GT_JSON.read_text())['categories']}
    stat = PQStat()
    for info, drop in zip(infos, ((), (dropped, ))):
        gt = read_panoptic_png(info['seg_map_path'])
        pred = np.where(np.isin(gt, list(drop)), 0, gt)
        listed = [s for s in info['segments_info'] if s['id'] not in drop]
        pred[~np.isin(pred, [s['id'] for s in listed])] = 0
        segments = [{'id': s['id'], 'category_id': s['category_id']} for s in listed]
        stat += pq_compute_single(gt, info['segments_info'], pred, segments, categories)
    expected = summarize_pq(stat, categories)
    assert metrics['PQ'] == pytest.approx(100 * expected['All']['pq'], abs=1e-9)
    assert metrics['RQ_st'] == pytest.approx(100 * expected['Stuff']['rq'], abs=1e-9)
    # by hand: the category keeps c - 1 perfect matches and gains one false negative
    c = sum(s['category_id'] == dropped_seg['category_id'] and not s['iscrowd']
            for info in infos for s in info['segments_info'])
    pq_category = (c - 1) / (c - 1 + 0.5)
    n_stuff = sum(not info_seg['isthing'] for info_seg in {
        s['category_id']: s for info in infos for s in info['segments_info']}.values())
    assert metrics['PQ_st'] == pytest.approx(100 * (n_stuff - 1 + pq_category) / n_stuff)
    assert metrics['PQ_th'] == 100.0 and metrics['PQ_st'] < 100.0


def test_outfile_written_and_scores_100_with_pq_compute(dataset, tmp_path):
    meta = dataset.metainfo
    pans = [encode_gt(dataset.get_data_info(i), meta) for i in range(len(dataset))]
    prefix = str(tmp_path / 'results')
    metric = PanopticQualityMetric(format_only=True, outfile_prefix=prefix)
    assert run_metric(metric, dataset, pans) == {}
    written = json.loads(Path(prefix + '.panoptic.json').read_text())
    ann = written['annotations'][0]
    assert set(ann) == {'image_id', 'file_name', 'segments_info'}
    assert ann['file_name'] == '000000142238.png' and ann['image_id'] == 142238
    assert set(ann['segments_info'][0]) == {'id', 'category_id'}
    results = pq_compute(GT_JSON, GT_DIR, prefix + '.panoptic.json', prefix + '.panoptic')
    for name in ('All', 'Things', 'Stuff'):
        assert results[name]['pq'] == 1.0


def test_outfile_with_evaluation_and_classwise_log(dataset, tmp_path):
    meta = dataset.metainfo
    pans = [encode_gt(dataset.get_data_info(i), meta) for i in range(len(dataset))]
    log_file = tmp_path / 'log.txt'
    MMLogger.get_instance('test_panoptic_metric', log_file=str(log_file))
    metric = PanopticQualityMetric(classwise=True, outfile_prefix=str(tmp_path / 'out'))
    metrics = run_metric(metric, dataset, pans)
    assert metrics['PQ'] == 100.0
    assert len(list((tmp_path / 'out.panoptic').glob('*.png'))) == 2
    log = log_file.read_text()
    assert 'Per-category panoptic quality' in log and '| person' in log and 'Things' in log


def test_panoptic_to_coco_ids_and_void():
    category_ids = (7, 9, 3)  # label 0 is a stuff class: value 0 must not become void
    pan = np.array([[0, 0, 3], [1 + 1000, 1 + 2000, 3 + 5000]])
    ids, segments = panoptic_to_coco(pan, category_ids)
    assert ids.tolist() == [[1, 1, 0], [2, 3, 0]]
    assert segments == [{'id': 1, 'category_id': 7}, {'id': 2, 'category_id': 9},
                        {'id': 3, 'category_id': 9}]
    with pytest.raises(ValueError, match='label up to|labels up to'):
        panoptic_to_coco(np.array([[4]]), category_ids)
    with pytest.raises(ValueError, match='0 <= label'):
        panoptic_to_coco(np.array([[-1]]), category_ids)


def test_errors(dataset):
    with pytest.raises(ValueError, match='needs outfile_prefix'):
        PanopticQualityMetric(format_only=True)
    info = dataset.get_data_info(0)
    pan = encode_gt(info, dataset.metainfo)
    metric = PanopticQualityMetric()
    metric.dataset_meta = dict(classes=dataset.metainfo['classes'])
    with pytest.raises(ValueError, match=r"missing \['category_ids', 'is_thing'\]"):
        metric.process({}, [make_sample(info, pan)])
    metric.dataset_meta = dataset.metainfo
    sample = make_sample(info, pan)
    sample['ori_shape'] = (10, 10)
    with pytest.raises(ValueError, match='image 142238: .*original image size'):
        metric.process({}, [sample])
    sample = make_sample(info, pan[:-1])
    with pytest.raises(ValueError, match=r'image 142238: ground truth has shape'):
        metric.process({}, [sample])
    sample = make_sample(info, pan)
    del sample['pred_panoptic_seg']
    with pytest.raises(KeyError, match='panoptic_on'):
        metric.process({}, [sample])
