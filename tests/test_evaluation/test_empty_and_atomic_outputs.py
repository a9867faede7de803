"""Metrics on empty inputs give defined numbers or clear errors; written files are never partial."""
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools.coco import COCO
from test_instance_metric import instance_file, panoptic_classes
from test_panoptic_metric import GT_DIR, GT_JSON, SAMPLE, encode_gt, make_sample

from mmseg_maskformer.datasets.panoptic import PanopticFormatDataset
from mmseg_maskformer.evaluation.functional import (atomic_open, atomic_save_png,
                                                    atomic_write_json, read_panoptic_png)
from mmseg_maskformer.evaluation.metrics import (AtomicIoUMetric, CocoInstanceMetric,
                                                 PanopticQualityMetric,
                                                 assemble_partial_annotations)


@pytest.fixture(scope='module')
def dataset():
    return PanopticFormatDataset(ann_file=str(GT_JSON), data_root='',
                                 data_prefix=dict(img=str(SAMPLE / 'images'), seg=str(GT_DIR)),
                                 test_mode=True)


def interrupt_png_writes(monkeypatch, after: int) -> None:
    """Make the ``after``-th and later PNG saves write half a file, then raise Ctrl-C."""
    real_save = Image.Image.save
    calls = []

    def save(self, fp, *args, **kwargs):
        calls.append(1)
        if len(calls) < after:
            return real_save(self, fp, *args, **kwargs)
        fp.write(b'\x89PNG\r\n\x1a\n half a picture')
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, 'save', save)


def visible_and_hidden(folder: Path):
    names = sorted(p.name for p in folder.iterdir())
    return [n for n in names if not n.startswith('.')], [n for n in names if n.startswith('.')]


# ---------------------------------------------------------------- atomic files


def test_atomic_open_keeps_the_old_file_on_interruption(tmp_path):
    path = tmp_path / 'result.json'
    atomic_write_json(str(path), {'v': 1})
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(str(path), 'w') as file:
            file.write('{"v": 2, "trunc')
            raise KeyboardInterrupt
    assert json.loads(path.read_text()) == {'v': 1}
    assert visible_and_hidden(tmp_path) == (['result.json'], [])
    atomic_save_png(str(tmp_path / 'a.png'), np.arange(12, dtype=np.uint8).reshape(3, 4))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / 'a.png')),
                                  np.arange(12).reshape(3, 4))


def test_panoptic_outputs_survive_an_interrupted_run(dataset, tmp_path, monkeypatch):
    meta = dataset.metainfo
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    samples = [make_sample(info, encode_gt(info, meta)) for info in infos]
    prefix = tmp_path / 'preds'
    metric = PanopticQualityMetric(outfile_prefix=str(prefix))
    metric.dataset_meta = meta
    interrupt_png_writes(monkeypatch, after=2)
    metric.process({}, samples[:1])
    with pytest.raises(KeyboardInterrupt):
        metric.process({}, samples[1:])
    visible, hidden = visible_and_hidden(Path(f'{prefix}.panoptic'))
    assert hidden == [] and visible == ['000000142238.png']  # the first image, complete
    assert (read_panoptic_png(f'{prefix}.panoptic/000000142238.png') > 0).any()
    assert not Path(f'{prefix}.panoptic.json').exists()  # written at the end only
    # the finished image's record survives; the JSON is rebuilt from the records
    json_path = assemble_partial_annotations(str(prefix))
    annotations = json.loads(Path(json_path).read_text())['annotations']
    assert [a['file_name'] for a in annotations] == ['000000142238.png']
    # an uninterrupted run writes the same record for that image, and no records folder
    complete = PanopticQualityMetric(outfile_prefix=str(tmp_path / 'full'))
    complete.dataset_meta = meta
    monkeypatch.undo()
    complete.process({}, samples)
    complete.evaluate(len(samples))
    full = json.loads(Path(f'{tmp_path}/full.panoptic.json').read_text())['annotations']
    assert full[0] == annotations[0] and len(full) == len(samples)
    assert not Path(f'{tmp_path}/full.panoptic.partial').exists()


# ---------------------------------------------------------------- panoptic quality


def test_pq_without_any_predicted_segment(dataset):
    """Every non-crowd GT segment is a false negative; categories without GT are left out."""
    meta = dataset.metainfo
    num_classes = len(meta['classes'])
    metric = PanopticQualityMetric(classwise=True)
    metric.dataset_meta = meta
    samples = []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        samples.append(make_sample(info, np.full((info['height'], info['width']), num_classes)))
    metric.process({}, samples)
    metrics = metric.evaluate(len(samples))
    assert all(value == 0.0 for value in metrics.values())
    counter = PanopticQualityMetric()
    counter.dataset_meta = meta
    counter.process({}, samples)
    fn = {}
    for info in (dataset.get_data_info(i) for i in range(len(dataset))):
        for seg in info['segments_info']:
            fn[seg['category_id']] = fn.get(seg['category_id'], 0) + (not seg['iscrowd'])
    counted = counter.results[0]['stat']
    counted += counter.results[1]['stat']
    assert {c: s.fn for c, s in counted.pq_per_cat.items() if s.fn} == \
        {c: n for c, n in fn.items() if n}
    assert all(s.tp == 0 and s.fp == 0 for s in counted.pq_per_cat.values())


def test_pq_with_zero_images(tmp_path):
    metric = PanopticQualityMetric()
    metric.dataset_meta = dict(classes=('a', ), category_ids=(1, ), is_thing=(True, ))
    with pytest.raises(ValueError, match='no image was evaluated'):
        metric.evaluate(0)
    writer = PanopticQualityMetric(format_only=True, outfile_prefix=str(tmp_path / 'p'))
    writer.dataset_meta = metric.dataset_meta
    assert writer.evaluate(0) == {}
    assert json.loads((tmp_path / 'p.panoptic.json').read_text()) == {'annotations': []}


# ---------------------------------------------------------------- COCO instance AP


def instance_samples(coco: COCO, num_predictions: int = 0):
    """One sample per image with ``num_predictions`` empty-mask predictions."""
    samples = []
    for img_id in sorted(coco.getImgIds()):
        info = coco.imgs[img_id]
        shape = (info['height'], info['width'])
        samples.append(dict(img_id=img_id, ori_shape=shape, pred_instances=dict(
            labels=torch.zeros(num_predictions, dtype=torch.long),
            scores=torch.ones(num_predictions),
            masks=torch.zeros((num_predictions, ) + shape, dtype=torch.bool),
            bboxes=torch.zeros(num_predictions, 4))))
    return samples


def test_coco_ap_with_zero_detections_is_zero(tmp_path):
    ann_file = instance_file(tmp_path)
    classes, _, _ = panoptic_classes()
    metric = CocoInstanceMetric(ann_file=str(ann_file), metric=['segm', 'bbox'],
                                outfile_prefix=str(tmp_path / 'out' / 'coco'))
    metric.dataset_meta = dict(classes=tuple(classes))
    samples = instance_samples(COCO(str(ann_file)))
    metric.process({}, samples)
    metrics = metric.evaluate(len(samples))
    for iou_type in ('segm', 'bbox'):  # mmdet alone returns no metric at all here
        assert metrics[f'coco/{iou_type}_mAP'] == 0.0
        assert metrics[f'coco/{iou_type}_mAP_50'] == 0.0
    assert json.loads((tmp_path / 'out' / 'coco.segm.json').read_text()) == []
    assert visible_and_hidden(tmp_path / 'out') == (['coco.bbox.json', 'coco.segm.json'], [])


def test_coco_zero_images_and_unknown_categories(tmp_path):
    ann_file = instance_file(tmp_path)
    classes, _, _ = panoptic_classes()
    metric = CocoInstanceMetric(ann_file=str(ann_file), metric=['segm'])
    metric.dataset_meta = dict(classes=tuple(classes))
    with pytest.raises(ValueError, match='no image was evaluated'):
        metric.evaluate(0)
    data = json.loads(ann_file.read_text())
    data['annotations'][3]['category_id'] = 4242
    ann = data['annotations'][3]
    bad = tmp_path / 'bad_instances.json'
    bad.write_text(json.dumps(data))
    file_name = next(i['file_name'] for i in data['images'] if i['id'] == ann['image_id'])
    with pytest.raises(ValueError, match=rf"bad_instances\.json: annotation {ann['id']} of image "
                       rf"{ann['image_id']} \({re.escape(file_name)}\) has category_id 4242"):
        CocoInstanceMetric(ann_file=str(bad))


# ---------------------------------------------------------------- semantic IoU


def semantic_sample(pred: np.ndarray, gt: np.ndarray, name: str) -> dict:
    return dict(img_path=f'images/{name}.jpg',
                pred_sem_seg=dict(data=torch.from_numpy(pred)[None]),
                gt_sem_seg=dict(data=torch.from_numpy(gt)[None]))


def test_iou_rows_of_absent_classes(tmp_path):
    """Class 2 absent everywhere: nan; class 3 predicted but absent from GT: IoU 0, Acc nan."""
    gt = np.array([[0, 0, 1, 1]] * 4)
    pred = np.array([[0, 0, 1, 3]] * 4)
    metric = AtomicIoUMetric(iou_metrics=['mIoU'], output_dir=str(tmp_path / 'png'))
    metric.dataset_meta = dict(classes=('a', 'b', 'c', 'd'))
    metric.process({}, [semantic_sample(pred, gt, 'x')])
    areas = metric.results[0]
    intersect, union, _, label = (a.numpy() for a in areas)
    with np.errstate(invalid='ignore'):
        iou = intersect / union
    assert np.isnan(iou[2]) and iou[3] == 0.0 and label[3] == 0
    metrics = metric.evaluate(1)
    assert metrics['mIoU'] == pytest.approx(round(100 * np.nanmean(iou), 2))
    assert metrics['mIoU'] == pytest.approx(round(100 * (1 + 0.5 + 0) / 3, 2))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / 'png' / 'x.png')), pred)
    with pytest.raises(ValueError, match='no image was evaluated'):
        metric.evaluate(0)


def test_semantic_pngs_survive_an_interrupted_run(tmp_path, monkeypatch):
    gt = np.zeros((4, 4), np.int64)
    metric = AtomicIoUMetric(output_dir=str(tmp_path / 'png'))
    metric.dataset_meta = dict(classes=('a', 'b'))
    interrupt_png_writes(monkeypatch, after=2)
    metric.process({}, [semantic_sample(gt, gt, 'first')])
    with pytest.raises(KeyboardInterrupt):
        metric.process({}, [semantic_sample(gt + 1, gt, 'second')])
    assert visible_and_hidden(tmp_path / 'png') == (['first.png'], [])
    assert os.path.getsize(tmp_path / 'png' / 'first.png') > 0
