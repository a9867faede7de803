"""CocoInstanceMetric: label mapping by name and equality with pycocotools' COCOeval."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mmseg_maskformer.evaluation.metrics.instance_metric import (CocoInstanceMetric,
                                                                 label_to_annotation_index)

SAMPLE = Path(__file__).resolve().parents[1] / 'data' / 'coco_panoptic_sample'
ANN_FILE = SAMPLE / 'panoptic_coco_detection_format.json'


def panoptic_classes():
    cats = sorted(json.loads((SAMPLE / 'panoptic_coco_categories.json').read_text()),
                  key=lambda c: c['id'])
    return [c['name'] for c in cats], [c['id'] for c in cats], [bool(c['isthing']) for c in cats]


def instance_file(tmp_path, things_only=True):
    """The fixture's instance annotations, restricted to things like instances_*.json."""
    data = json.loads(ANN_FILE.read_text())
    categories = json.loads((SAMPLE / 'panoptic_coco_categories.json').read_text())
    thing_ids = {c['id'] for c in categories if c['isthing']}
    if things_only:
        data['categories'] = [c for c in data['categories'] if c['id'] in thing_ids]
        data['annotations'] = [a for a in data['annotations'] if a['category_id'] in thing_ids]
    # pycocotools reads a match with annotation id 0 as "unmatched"; real COCO
    # instance files number annotations from 1, the fixture's conversion from 0
    for new_id, ann in enumerate(data['annotations'], start=1):
        ann['id'] = new_id
    path = tmp_path / 'instances.json'
    path.write_text(json.dumps(data))
    return path


def predictions_from_gt(coco, classes, cat_ids, rng):
    """Per image: GT masks as predictions, a few perturbed, random scores, plus a stuff one."""
    samples = []
    label_of = {cid: cat_ids.index(cid) for cid in cat_ids}
    for img_id in sorted(coco.getImgIds()):
        info = coco.imgs[img_id]
        anns = [a for a in coco.imgToAnns[img_id] if not a['iscrowd']]
        masks = np.stack([coco.annToMask(a) for a in anns]).astype(bool)
        masks[::3] = np.roll(masks[::3], shift=7, axis=2)  # imperfect predictions
        labels = np.array([label_of[a['category_id']] for a in anns])
        labels[1] = (labels[1] + 1) % 80  # one wrong class
        # a prediction of a stuff class, absent from the instance file
        masks = np.concatenate([masks, masks[:1]])
        labels = np.concatenate([labels, [cat_ids.index(184)]])
        scores = rng.uniform(0.05, 1.0, size=len(labels))
        ys, xs = np.nonzero(masks[0])
        boxes = np.zeros((len(labels), 4), np.float32)
        for i, m in enumerate(masks):
            ys, xs = np.nonzero(m)
            if len(xs):
                boxes[i] = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        samples.append(dict(
            img_id=img_id, ori_shape=(info['height'], info['width']),
            pred_instances=dict(labels=torch.from_numpy(labels), scores=torch.from_numpy(scores),
                                masks=torch.from_numpy(masks), bboxes=torch.from_numpy(boxes))))
    return samples


def cocoeval_stats(coco, samples, cat_ids, iou_type):
    """pycocotools' own evaluation of the same predictions."""
    results = []
    for s in samples:
        p = s['pred_instances']
        for label, score, mask, box in zip(p['labels'], p['scores'], p['masks'], p['bboxes']):
            cid = cat_ids[int(label)]
            if cid not in coco.cats:
                continue
            entry = dict(image_id=s['img_id'], category_id=cid, score=float(score))
            if iou_type == 'segm':
                rle = mask_utils.encode(np.asfortranarray(mask.numpy().astype(np.uint8)))
                rle['counts'] = rle['counts'].decode()
                entry['segmentation'] = rle
            else:
                x1, y1, x2, y2 = box.tolist()
                entry['bbox'] = [x1, y1, x2 - x1, y2 - y1]
            results.append(entry)
    evaluator = COCOeval(coco, coco.loadRes(results), iou_type)
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return evaluator.stats


def test_label_to_annotation_index_by_name():
    classes = ['wall', 'person', 'sky', 'car']
    index, cat_ids = label_to_annotation_index(classes, {1: dict(name='person'),
                                                         3: dict(name='car')})
    assert index.tolist() == [-1, 0, -1, 1] and cat_ids == [1, 3]
    with pytest.raises(ValueError, match='by name'):
        label_to_annotation_index(['wall'], {1: dict(name='person')})


def test_requires_ann_file():
    with pytest.raises(ValueError, match='ann_file'):
        CocoInstanceMetric()


@pytest.mark.parametrize('iou_type', ['segm', 'bbox'])
def test_equals_pycocotools(tmp_path, iou_type):
    ann_file = instance_file(tmp_path)
    coco = COCO(str(ann_file))
    classes, cat_ids, _ = panoptic_classes()
    samples = predictions_from_gt(coco, classes, cat_ids, np.random.default_rng(0))
    metric = CocoInstanceMetric(ann_file=str(ann_file), metric=[iou_type])
    metric.dataset_meta = dict(classes=tuple(classes))
    metric.process({}, samples)
    ours = metric.evaluate(len(samples))
    stats = cocoeval_stats(coco, samples, cat_ids, iou_type)
    assert 0.2 < stats[0] < 0.99  # a non-trivial AP
    assert ours[f'coco/{iou_type}_mAP'] == pytest.approx(round(stats[0], 3), abs=1e-9)
    assert ours[f'coco/{iou_type}_mAP_50'] == pytest.approx(round(stats[1], 3), abs=1e-9)


def test_ground_truth_scores_100(tmp_path):
    ann_file = instance_file(tmp_path)
    coco = COCO(str(ann_file))
    classes, cat_ids, _ = panoptic_classes()
    samples = []
    for img_id in sorted(coco.getImgIds()):
        anns = [a for a in coco.imgToAnns[img_id] if not a['iscrowd']]
        masks = torch.from_numpy(np.stack([coco.annToMask(a) for a in anns]).astype(bool))
        labels = torch.tensor([cat_ids.index(a['category_id']) for a in anns])
        boxes = torch.tensor([[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2],
                               a['bbox'][1] + a['bbox'][3]] for a in anns], dtype=torch.float32)
        info = coco.imgs[img_id]
        samples.append(dict(img_id=img_id, ori_shape=(info['height'], info['width']),
                            pred_instances=dict(labels=labels, scores=torch.ones(len(anns)),
                                                masks=masks, bboxes=boxes)))
    metric = CocoInstanceMetric(ann_file=str(ann_file), metric=['segm'])
    metric.dataset_meta = dict(classes=tuple(classes))
    metric.process({}, samples)
    assert metric.evaluate(len(samples))['coco/segm_mAP'] == 1.0


def test_explicit_label_to_category_id(tmp_path):
    """Files naming their classes differently are mapped by an explicit id list."""
    from mmseg_maskformer.evaluation.metrics.instance_metric import explicit_annotation_index
    cats = {1: dict(name='windowpane'), 2: dict(name='person')}
    index, cat_ids = explicit_annotation_index([-1, 2, 1], 3, cats)
    assert index.tolist() == [-1, 0, 1] and cat_ids == [2, 1]
    with pytest.raises(ValueError, match='entries'):
        explicit_annotation_index([1], 3, cats)
    with pytest.raises(ValueError, match=r'\[7\]'):
        explicit_annotation_index([7, -1, -1], 3, cats)
    with pytest.raises(ValueError, match='two labels'):
        explicit_annotation_index([1, 1, -1], 3, cats)

    # renamed classes: name matching would fail, the explicit list scores 100
    ann_file = instance_file(tmp_path)
    coco = COCO(str(ann_file))
    classes, cat_ids, is_thing = panoptic_classes()
    renamed = [f'class {i}' for i in range(len(classes))]
    mapping = [cid if thing else -1 for cid, thing in zip(cat_ids, is_thing)]
    samples = []
    for img_id in sorted(coco.getImgIds()):
        anns = [a for a in coco.imgToAnns[img_id] if not a['iscrowd']]
        masks = torch.from_numpy(np.stack([coco.annToMask(a) for a in anns]).astype(bool))
        labels = torch.tensor([cat_ids.index(a['category_id']) for a in anns])
        info = coco.imgs[img_id]
        samples.append(dict(img_id=img_id, ori_shape=(info['height'], info['width']),
                            pred_instances=dict(labels=labels,
                                                scores=torch.linspace(1, 0.5, len(anns)),
                                                masks=masks, bboxes=torch.zeros(len(anns), 4))))
    metric = CocoInstanceMetric(ann_file=str(ann_file), metric=['segm'],
                                label_to_category_id=mapping)
    metric.dataset_meta = dict(classes=tuple(renamed))
    metric.process({}, samples)
    assert metric.evaluate(len(samples))['coco/segm_mAP'] == 1.0
