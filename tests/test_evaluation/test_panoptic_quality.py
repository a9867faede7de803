"""Panoptic quality: equality with a loop-based reference, hand-computed cases, errors."""
import copy
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from pq_reference import reference_add, reference_average, reference_single

from mmseg_maskformer.evaluation.functional import (PanopticFormatError, PQStat, pq_compute,
                                                    pq_compute_single, pq_compute_stat,
                                                    pq_per_class_table, pq_summary_table,
                                                    read_panoptic_png, summarize_pq,
                                                    write_panoptic_png)
from mmseg_maskformer.utils.panoptic import OFFSET

SAMPLE = Path(__file__).resolve().parents[1] / 'data' / 'coco_panoptic_sample'
GT_JSON = SAMPLE / 'panoptic_examples.json'
GT_DIR = SAMPLE / 'panoptic'

THING, STUFF = (1, 2, 5), (10, 11, 20)
CATEGORIES = {cid: {'id': cid, 'name': f'c{cid}', 'isthing': int(cid in THING)}
              for cid in THING + STUFF}


# --------------------------------------------------------------------------- helpers
def stat_as_dict(stat: PQStat) -> dict:
    return {cid: {'iou': s.iou, 'tp': s.tp, 'fp': s.fp, 'fn': s.fn}
            for cid, s in stat.pq_per_cat.items() if s.tp + s.fp + s.fn or s.iou}


def assert_stats_equal(ours: dict, ref: dict) -> None:
    ref = {cid: s for cid, s in ref.items() if s['tp'] + s['fp'] + s['fn'] or s['iou']}
    assert set(ours) == set(ref)
    for cid in ref:
        for key in ('tp', 'fp', 'fn'):
            assert ours[cid][key] == ref[cid][key], (cid, key)
        assert abs(ours[cid]['iou'] - ref[cid]['iou']) < 1e-9


def png_area(ids: np.ndarray, seg_id: int) -> int:
    return int((ids == seg_id).sum())


def random_case(rng: np.random.Generator):
    """A random image with crowd, void, unlisted GT ids, shifted/relabelled/extra predictions."""
    h, w = rng.integers(6, 40, size=2)
    used = {0}

    def new_id() -> int:
        while True:
            seg_id = int(rng.choice([rng.integers(1, 50), rng.integers(1, OFFSET)]))
            if seg_id not in used:
                used.add(seg_id)
                return seg_id

    def paint(ids: np.ndarray, seg_id: int) -> None:
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        ids[y0:y0 + rng.integers(1, h + 1), x0:x0 + rng.integers(1, w + 1)] = seg_id

    gt = np.zeros((h, w), np.int64)
    gt_segments = []
    for _ in range(0 if rng.random() < 0.1 else rng.integers(1, 9)):
        seg_id, cid = new_id(), int(rng.choice(THING + STUFF))
        paint(gt, seg_id)
        crowd = int(cid in THING and rng.random() < 0.25)
        gt_segments.append({'id': seg_id, 'category_id': cid, 'iscrowd': crowd})
    if rng.random() < 0.3:  # an id in the PNG that the JSON does not list
        paint(gt, new_id())
    for seg in gt_segments:
        seg['area'] = png_area(gt, seg['id'])

    pred = gt.copy()
    if rng.random() < 0.5:
        pred = np.roll(pred, tuple(rng.integers(-3, 4, size=2)), axis=(0, 1))
    relabel = {seg['id']: new_id() for seg in gt_segments}
    pred = np.vectorize(lambda v: relabel.get(v, 0), otypes=[np.int64])(pred)
    category = {relabel[seg['id']]: seg['category_id'] for seg in gt_segments}
    for _ in range(rng.integers(0, 4)):  # unmatched extra predictions, some on void
        seg_id = new_id()
        paint(pred, seg_id)
        category[seg_id] = int(rng.choice(THING + STUFF))
    if rng.random() < 0.3:
        pred[rng.random((h, w)) < 0.2] = 0
    if rng.random() < 0.1:
        pred[:] = 0
    pred_segments = []
    for seg_id in np.unique(pred).tolist():
        if seg_id == 0:
            continue
        cid = category[seg_id]
        if rng.random() < 0.15:  # wrong class
            cid = int(rng.choice(THING + STUFF))
        pred_segments.append({'id': seg_id, 'category_id': cid})
    rng.shuffle(pred_segments)
    return gt, gt_segments, pred, pred_segments


def fixture_annotations():
    data = json.loads(GT_JSON.read_text())
    categories = {cat['id']: cat for cat in data['categories']}
    return data, categories


# --------------------------------------------------------------------------- reference
def test_random_cases_equal_reference():
    rng = np.random.default_rng(0)
    total_ours, total_ref = PQStat(), {}
    kinds = dict(crowd=0, void_pred=0, empty_gt=0, fp=0, wrong_class=0)
    for index in range(400):
        gt, gt_segments, pred, pred_segments = random_case(rng)
        ours = pq_compute_single(gt, gt_segments, pred, pred_segments, CATEGORIES, index)
        ref = reference_single(gt, gt_segments, pred, pred_segments, CATEGORIES, index)
        assert_stats_equal(stat_as_dict(ours), ref)
        total_ours += ours
        reference_add(total_ref, ref)
        kinds['crowd'] += any(s['iscrowd'] for s in gt_segments)
        kinds['void_pred'] += bool(((gt == 0) & (pred != 0)).any())
        kinds['empty_gt'] += not gt_segments
        kinds['fp'] += sum(s['fp'] for s in ref.values()) > 0
        kinds['wrong_class'] += sum(s['fn'] for s in ref.values()) > 0
    assert min(kinds.values()) >= 10, kinds  # every situation occurs
    results = summarize_pq(total_ours, CATEGORIES)
    for name, isthing in (('All', None), ('Things', True), ('Stuff', False)):
        expected, per_class = reference_average(total_ref, CATEGORIES, isthing)
        assert results[name]['n'] == expected['n'] > 0
        for key in ('pq', 'sq', 'rq'):
            assert results[name][key] == pytest.approx(expected[key], abs=1e-9)
        if name == 'All':
            for cid, scores in per_class.items():
                for key in ('pq', 'sq', 'rq'):
                    assert results['per_class'][cid][key] == pytest.approx(scores[key], abs=1e-9)


def test_fixture_perturbations_equal_reference():
    data, categories = fixture_annotations()
    rng = np.random.default_rng(1)
    for ann in data['annotations']:
        gt = read_panoptic_png(GT_DIR / ann['file_name'])
        pred = np.roll(gt, (5, -3), axis=(0, 1))
        segments = [{'id': s['id'], 'category_id': s['category_id']}
                    for s in ann['segments_info'] if (pred == s['id']).any()]
        for seg in segments[::4]:
            seg['category_id'] = int(rng.choice(list(categories)))
        ours = pq_compute_single(gt, ann['segments_info'], pred, segments, categories)
        ref = reference_single(gt, ann['segments_info'], pred, segments, categories)
        assert_stats_equal(stat_as_dict(ours), ref)
        assert sum(s['tp'] for s in ref.values()) > 0 and sum(s['fp'] for s in ref.values()) > 0


# --------------------------------------------------------------------------- fixture
def test_fixture_against_itself_is_perfect():
    results = pq_compute(GT_JSON, GT_DIR, GT_JSON, GT_DIR)
    data, categories = fixture_annotations()
    non_crowd = {s['category_id'] for a in data['annotations'] for s in a['segments_info']
                 if not s['iscrowd']}
    assert results['All']['n'] == len(non_crowd)
    assert results['Things']['n'] + results['Stuff']['n'] == len(non_crowd)
    for name in ('All', 'Things', 'Stuff'):
        assert results[name]['n'] > 0
        for key in ('pq', 'sq', 'rq'):
            assert results[name][key] == 1.0
    assert set(results['per_class']) == set(categories)


def test_fixture_dict_inputs_and_default_folders(tmp_path):
    data, _ = fixture_annotations()
    pred = {'annotations': [{'image_id': a['image_id'], 'file_name': a['file_name'],
                             'segments_info': [{'id': s['id'], 'category_id': s['category_id']}
                                               for s in a['segments_info']]}
                            for a in data['annotations']]}
    (tmp_path / 'pred.json').write_text(json.dumps(pred))
    shutil.copytree(GT_DIR, tmp_path / 'pred')
    results = pq_compute(data, GT_DIR, tmp_path / 'pred.json', None)
    assert results['All']['pq'] == 1.0


def drop_segment(data: dict, image_index: int, seg_id: int, pred_dir: Path) -> None:
    """Remove one segment from the prediction JSON and paint it void in its PNG."""
    ann = data['annotations'][image_index]
    ann['segments_info'] = [s for s in ann['segments_info'] if s['id'] != seg_id]
    ids = read_panoptic_png(GT_DIR / ann['file_name'])
    ids[ids == seg_id] = 0
    write_panoptic_png(pred_dir / ann['file_name'], ids)


def test_fixture_drop_one_thing_segment_gives_known_pq(tmp_path):
    data, categories = fixture_annotations()
    pred = copy.deepcopy(data)
    pred_dir = tmp_path / 'pred'
    shutil.copytree(GT_DIR, pred_dir)
    # a person (category 1) of the first image: other persons remain matched
    person = [s for s in data['annotations'][0]['segments_info']
              if s['category_id'] == 1 and not s['iscrowd']]
    drop_segment(pred, 0, person[0]['id'], pred_dir)
    results = pq_compute(data, GT_DIR, pred, pred_dir)

    n_persons = sum(1 for a in data['annotations'] for s in a['segments_info']
                    if s['category_id'] == 1 and not s['iscrowd'])
    tp = n_persons - 1
    pq_person = tp / (tp + 0.5)  # each remaining match has IoU 1
    n_all, n_things = results['All']['n'], results['Things']['n']
    assert results['per_class'][1] == pytest.approx({'pq': pq_person, 'sq': 1.0, 'rq': pq_person})
    assert results['All']['pq'] == pytest.approx((n_all - 1 + pq_person) / n_all, abs=1e-12)
    assert results['Things']['pq'] == pytest.approx((n_things - 1 + pq_person) / n_things)
    assert results['Stuff']['pq'] == 1.0


def test_fixture_drop_only_segment_of_a_category(tmp_path):
    data, _ = fixture_annotations()
    counts = {}
    for a in data['annotations']:
        for s in a['segments_info']:
            counts[s['category_id']] = counts.get(s['category_id'], 0) + 1
    seg = next(s for s in data['annotations'][1]['segments_info']
               if counts[s['category_id']] == 1 and not s['iscrowd'])
    pred = copy.deepcopy(data)
    pred_dir = tmp_path / 'pred'
    shutil.copytree(GT_DIR, pred_dir)
    drop_segment(pred, 1, seg['id'], pred_dir)
    results = pq_compute(data, GT_DIR, pred, pred_dir)
    n = results['All']['n']
    assert results['per_class'][seg['category_id']] == {'pq': 0.0, 'sq': 0.0, 'rq': 0.0}
    assert results['All']['pq'] == pytest.approx((n - 1) / n, abs=1e-12)
    assert results['All']['sq'] == pytest.approx((n - 1) / n, abs=1e-12)


# --------------------------------------------------------------------------- hand cases
def single(gt, gt_segments, pred, pred_segments):
    stat = pq_compute_single(np.asarray(gt), gt_segments, np.asarray(pred), pred_segments,
                             CATEGORIES, image_id=7)
    return stat_as_dict(stat)


def seg(seg_id, cid, crowd=0, area=None):
    out = {'id': seg_id, 'category_id': cid, 'iscrowd': crowd}
    if area is not None:
        out['area'] = area
    return out


def test_partial_overlap_iou():
    gt = np.zeros((10, 10), np.int64)
    gt[:4], gt[4:] = 1, 2  # thing 40 px, stuff 60 px
    pred = np.zeros_like(gt)
    pred[:3], pred[3:] = 5, 6  # thing 30 px (IoU 0.75), stuff 70 px (IoU 6/7)
    stats = single(gt, [seg(1, 1), seg(2, 10)], pred, [seg(5, 1), seg(6, 10)])
    assert stats[1] == {'iou': 0.75, 'tp': 1, 'fp': 0, 'fn': 0}
    assert stats[10]['iou'] == pytest.approx(6 / 7) and stats[10]['tp'] == 1
    stat = PQStat()
    stat[1].iou, stat[1].tp = 0.75, 1
    stat[10].iou, stat[10].tp = 6 / 7, 1
    results = summarize_pq(stat, CATEGORIES)
    assert results['All'] == pytest.approx({'pq': (0.75 + 6 / 7) / 2, 'sq': (0.75 + 6 / 7) / 2,
                                            'rq': 1.0, 'n': 2})


def test_void_pixels_leave_the_union():
    gt = np.zeros((10, 10), np.int64)
    gt[:4] = 1  # 40 px, the rest void
    pred = np.full_like(gt, 3)  # 100 px, 60 on void: union = 100 + 40 - 40 - 60
    assert single(gt, [seg(1, 1)], pred, [seg(3, 1)]) == {
        1: {'iou': 1.0, 'tp': 1, 'fp': 0, 'fn': 0}}


def test_iou_of_exactly_half_is_no_match():
    gt = np.zeros((4, 10), np.int64)
    gt[:2] = 1  # 20 px
    gt[2:] = 2  # 20 px stuff
    pred = np.full_like(gt, 9)  # one thing segment over both: IoU 20 / 40
    stats = single(gt, [seg(1, 1), seg(2, 10)], pred, [seg(9, 1)])
    assert stats == {1: {'iou': 0.0, 'tp': 0, 'fp': 1, 'fn': 1},
                     10: {'iou': 0.0, 'tp': 0, 'fp': 0, 'fn': 1}}


def test_wrong_class_overlap_is_fp_and_fn():
    gt = np.full((5, 5), 1, np.int64)
    pred = np.full_like(gt, 2)
    assert single(gt, [seg(1, 1)], pred, [seg(2, 2)]) == {
        1: {'iou': 0.0, 'tp': 0, 'fp': 0, 'fn': 1}, 2: {'iou': 0.0, 'tp': 0, 'fp': 1, 'fn': 0}}


def test_prediction_mostly_on_void_and_crowd_is_ignored():
    gt = np.zeros((10, 10), np.int64)
    gt[:, :3] = 4  # crowd of category 1, 30 px
    gt[:, 8:] = 6  # stuff 10, 20 px
    pred = np.zeros_like(gt)
    pred[:, :6] = 3  # category 1: 30 px on crowd + 30 px on void -> ignored
    pred[:, 6:] = 8  # category 10: 20 px on the stuff, 20 on void: IoU 20 / 20
    stats = single(gt, [seg(4, 1, crowd=1), seg(6, 10)], pred, [seg(3, 1), seg(8, 10)])
    assert stats == {10: {'iou': 1.0, 'tp': 1, 'fp': 0, 'fn': 0}}
    # the same region predicted as another class is a false positive
    stats = single(gt, [seg(4, 1, crowd=1), seg(6, 10)], pred, [seg(3, 2), seg(8, 10)])
    assert stats[2] == {'iou': 0.0, 'tp': 0, 'fp': 1, 'fn': 0}


def test_exactly_half_on_void_is_a_false_positive():
    gt = np.zeros((2, 10), np.int64)
    gt[:, 5:] = 1
    pred = np.full_like(gt, 2)  # 10 of 20 px on void; IoU with gt 10 / 10 but wrong class
    stats = single(gt, [seg(1, 10)], pred, [seg(2, 1)])
    assert stats[1]['fp'] == 1 and stats[10]['fn'] == 1


def test_only_the_last_crowd_segment_of_a_category_counts():
    gt = np.zeros((4, 10), np.int64)
    gt[:, :5], gt[:, 5:] = 11, 12  # two crowd regions of category 1
    pred = np.zeros_like(gt)
    pred[:, :5] = 3
    segments = [seg(11, 1, crowd=1), seg(12, 1, crowd=1)]
    assert single(gt, segments, pred, [seg(3, 1)]) == {1: {'iou': 0.0, 'tp': 0, 'fp': 1, 'fn': 0}}
    assert single(gt, segments[::-1], pred, [seg(3, 1)]) == {}


def test_crowd_segments_are_never_false_negatives_nor_matched():
    gt = np.full((4, 4), 1, np.int64)
    pred = np.full_like(gt, 2)
    assert single(gt, [seg(1, 1, crowd=1)], pred, [seg(2, 1)]) == {}
    assert single(gt, [seg(1, 1, crowd=1)], np.zeros_like(gt), []) == {}


def test_empty_images():
    empty = np.zeros((3, 4), np.int64)
    assert single(empty, [], empty, []) == {}
    # a prediction on an all-void image is ignored
    assert single(empty, [], np.ones_like(empty), [seg(1, 1)]) == {}
    # a GT segment listed but absent from the PNG (area 0 in the JSON) is a false negative
    assert single(empty, [seg(5, 10, area=0)], empty, []) == {
        10: {'iou': 0.0, 'tp': 0, 'fp': 0, 'fn': 1}}
    stat = pq_compute_single(np.zeros((0, 0), np.int64), [], np.zeros((0, 0), np.int64), [],
                             CATEGORIES)
    assert summarize_pq(stat, CATEGORIES)['All'] == {'pq': 0.0, 'sq': 0.0, 'rq': 0.0, 'n': 0}


def test_gt_area_field_is_used_and_defaults_to_png_count():
    gt = np.zeros((10, 10), np.int64)
    gt[:5] = 1
    pred = np.zeros_like(gt)
    pred[:4] = 2
    without = single(gt, [seg(1, 1)], pred, [seg(2, 1)])
    assert without[1]['iou'] == pytest.approx(40 / 50)
    assert single(gt, [seg(1, 1, area=50)], pred, [seg(2, 1)]) == without
    # like the API, the JSON area wins over the PNG count for GT segments
    assert single(gt, [seg(1, 1, area=60)], pred, [seg(2, 1)])[1]['iou'] == pytest.approx(40 / 60)
    # a prediction's own area field is ignored: its PNG count is used
    assert single(gt, [seg(1, 1)], pred, [dict(seg(2, 1), area=1)]) == without


def test_unlisted_gt_ids_are_not_void():
    gt = np.zeros((2, 10), np.int64)
    gt[:, :5], gt[:, 5:] = 1, 77  # id 77 is not listed
    pred = np.full_like(gt, 3)
    # union = 20 + 10 - 10 - 0 (no void): IoU 0.5, no match; 77 does not excuse the FP
    assert single(gt, [seg(1, 1)], pred, [seg(3, 1)]) == {1: {'iou': 0.0, 'tp': 0, 'fp': 1,
                                                              'fn': 1}}


def test_pq_average_rules_and_pickling():
    stat = PQStat()
    stat[1].iou, stat[1].tp, stat[1].fp, stat[1].fn = 1.5, 2, 1, 1
    stat[10].fp = 3  # sq of a category without tp is 0
    stat[999].tp = 5  # categories outside the list are ignored
    other = pickle.loads(pickle.dumps(stat))
    stat += other
    averaged, per_class = stat.pq_average(CATEGORIES, None)
    assert per_class[1] == pytest.approx({'pq': 3.0 / 6, 'sq': 0.75, 'rq': 4 / 6})
    assert per_class[10] == {'pq': 0.0, 'sq': 0.0, 'rq': 0.0}
    assert per_class[2] == {'pq': 0.0, 'sq': 0.0, 'rq': 0.0}
    assert averaged == pytest.approx({'pq': 0.25, 'sq': 0.375, 'rq': 1 / 3, 'n': 2})
    things, _ = stat.pq_average(CATEGORIES, True)
    assert things['n'] == 1 and things['pq'] == pytest.approx(0.5)
    stuff, stuff_classes = stat.pq_average(CATEGORIES, False)
    assert stuff == {'pq': 0.0, 'sq': 0.0, 'rq': 0.0, 'n': 1}
    assert set(stuff_classes) == set(STUFF)


# --------------------------------------------------------------------------- errors
def test_error_png_id_not_in_json():
    gt = np.ones((3, 3), np.int64)
    with pytest.raises(KeyError, match=r"image 7: segment id 4 occurs in the prediction PNG"):
        single(gt, [seg(1, 1)], np.full_like(gt, 4), [])


def test_error_json_id_not_in_png():
    gt = np.ones((3, 3), np.int64)
    with pytest.raises(ValueError, match=r'image 7: segment ids \[5, 6\] are listed'):
        single(gt, [seg(1, 1)], np.full_like(gt, 4), [seg(4, 1), seg(6, 1), seg(5, 1)])


def test_error_unknown_category():
    gt = np.ones((3, 3), np.int64)
    with pytest.raises(PanopticFormatError, match=r'segment 4 has unknown category_id 3'):
        single(gt, [seg(1, 1)], np.full_like(gt, 4), [seg(4, 3)])


def test_error_shapes_and_ranges():
    gt = np.ones((3, 3), np.int64)
    with pytest.raises(ValueError, match=r'image 7: ground truth has shape \(3, 3\)'):
        single(gt, [], np.ones((3, 4), np.int64), [])
    with pytest.raises(ValueError, match='prediction segment ids must lie in'):
        single(gt, [], np.full_like(gt, OFFSET), [])
    with pytest.raises(ValueError, match='2-D integer array'):
        single(gt, [], np.ones((3, 3), np.float32), [])


def test_error_missing_prediction_and_files(tmp_path):
    data, _ = fixture_annotations()
    pred = {'annotations': data['annotations'][:1]}
    with pytest.raises(ValueError, match='no prediction for the image with id 439180'):
        pq_compute(data, GT_DIR, pred, GT_DIR)
    with pytest.raises(FileNotFoundError, match='prediction PNG folder'):
        pq_compute(data, GT_DIR, data, tmp_path / 'missing')
    with pytest.raises(FileNotFoundError, match='ground-truth JSON'):
        pq_compute(tmp_path / 'missing.json', GT_DIR, data, GT_DIR)
    with pytest.raises(FileNotFoundError, match='000000142238.png does not exist'):
        pq_compute(data, GT_DIR, data, tmp_path)


def test_error_missing_keys():
    data, _ = fixture_annotations()
    pred = {'annotations': [{'image_id': 142238, 'segments_info': []}]}
    with pytest.raises(ValueError, match=r"prediction JSON \(image_id 142238\) lacks "
                       r"\['file_name'\]"):
        pq_compute(data, GT_DIR, pred, GT_DIR)
    with pytest.raises(ValueError, match=r"the prediction JSON lacks \['annotations'\]"):
        pq_compute(data, GT_DIR, {}, GT_DIR)
    gt = np.ones((3, 3), np.int64)
    with pytest.raises(ValueError, match='image 7: prediction segment .* lacks id'):
        single(gt, [seg(1, 1)], gt, [{'id': 1}])


def test_read_write_roundtrip_and_mode_check(tmp_path):
    ids = np.array([[0, 1, 256], [65536, OFFSET - 1, 7]], np.int64)
    write_panoptic_png(tmp_path / 'a.png', ids)
    assert np.array_equal(read_panoptic_png(tmp_path / 'a.png'), ids)
    from PIL import Image
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / 'gray.png')
    with pytest.raises(ValueError, match='has mode L'):
        read_panoptic_png(tmp_path / 'gray.png')


def table_rows(table: str) -> list:
    return [[cell.strip() for cell in line.split('|')[1:-1]] for line in table.splitlines()
            if line.startswith('|')]


def test_tables():
    stat, categories = pq_compute_stat(GT_JSON, GT_DIR, GT_JSON, GT_DIR)
    results = summarize_pq(stat, categories)
    assert results == pq_compute(GT_JSON, GT_DIR, GT_JSON, GT_DIR)
    summary = table_rows(pq_summary_table(results))
    assert summary[1:] == [['All', '100.000', '100.000', '100.000', '8'],
                           ['Things', '100.000', '100.000', '100.000', '4'],
                           ['Stuff', '100.000', '100.000', '100.000', '4']]
    rows = table_rows(pq_per_class_table(results, categories))
    assert len(rows) == 134 and rows[1] == ['1', 'person', 'thing', '100.000', '100.000',
                                            '100.000']
    kinds = [row[2] for row in rows[1:]]
    assert kinds.count('thing') == 80 and kinds.count('stuff') == 53
    n_persons = sum(1 for a in json.loads(GT_JSON.read_text())['annotations']
                    for s in a['segments_info'] if s['category_id'] == 1 and not s['iscrowd'])
    rows = table_rows(pq_per_class_table(results, categories, stat))
    assert rows[0][-3:] == ['TP', 'FP', 'FN']
    assert rows[1][3:] == ['100.000'] * 3 + [str(n_persons), '0', '0']
    assert rows[2] == ['2', 'bicycle', 'thing', '-', '-', '-', '0', '0', '0']
