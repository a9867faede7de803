"""A plain, loop-based reference of the COCO panoptic API's per-image PQ rules.

Written for the tests only: it follows the API's algorithm step by step with
dicts and Python loops (pixel pairs are counted with a ``Counter``), without
any of the vectorisation of ``mmseg_maskformer.evaluation.functional``.
Statistics are plain dicts ``{category_id: {'iou', 'tp', 'fp', 'fn'}}``.
"""
from collections import Counter
from typing import Any, Dict, Hashable, List, Mapping, Optional, Tuple

import numpy as np

VOID = 0


def _new() -> Dict[str, float]:
    return {'iou': 0.0, 'tp': 0, 'fp': 0, 'fn': 0}


def reference_single(gt_ids: np.ndarray, gt_segments: List[dict], pred_ids: np.ndarray,
                     pred_segments: List[dict], categories: Mapping[Hashable, Any],
                     image_id: Any = None) -> Dict[Hashable, Dict[str, float]]:
    """Per-category accumulators of one image; GT segments must carry ``area``."""
    stats: Dict[Hashable, Dict[str, float]] = {}

    def cat(category_id: Hashable) -> Dict[str, float]:
        if category_id not in stats:
            stats[category_id] = _new()
        return stats[category_id]

    gt_segms = {seg['id']: dict(seg) for seg in gt_segments}
    pred_segms = {seg['id']: dict(seg) for seg in pred_segments}

    # areas of the predicted segments and consistency of the prediction
    pred_counts = Counter(pred_ids.ravel().tolist())
    unseen = set(pred_segms)
    for seg_id in sorted(pred_counts):
        if seg_id not in pred_segms:
            if seg_id == VOID:
                continue
            raise KeyError(f'image {image_id}: PNG id {seg_id} not in JSON')
        pred_segms[seg_id]['area'] = pred_counts[seg_id]
        unseen.remove(seg_id)
        if pred_segms[seg_id]['category_id'] not in categories:
            raise KeyError(f'image {image_id}: unknown category')
    if unseen:
        raise KeyError(f'image {image_id}: JSON ids {sorted(unseen)} not in PNG')

    # intersections of all (gt, pred) pairs, in increasing (gt, pred) order
    pairs = Counter(zip(gt_ids.ravel().tolist(), pred_ids.ravel().tolist()))
    pair_list: List[Tuple[Tuple[int, int], int]] = sorted(pairs.items())

    gt_matched, pred_matched = set(), set()
    for (gt_id, pred_id), intersection in pair_list:
        if gt_id not in gt_segms or pred_id not in pred_segms:
            continue
        gt_seg, pred_seg = gt_segms[gt_id], pred_segms[pred_id]
        if gt_seg.get('iscrowd', 0) == 1:
            continue
        if gt_seg['category_id'] != pred_seg['category_id']:
            continue
        union = (pred_seg['area'] + gt_seg['area'] - intersection -
                 pairs.get((VOID, pred_id), 0))
        iou = intersection / union
        if iou > 0.5:
            stat = cat(gt_seg['category_id'])
            stat['tp'] += 1
            stat['iou'] += iou
            gt_matched.add(gt_id)
            pred_matched.add(pred_id)

    crowd_by_category: Dict[Hashable, int] = {}
    for gt_id, gt_seg in gt_segms.items():
        if gt_id in gt_matched:
            continue
        if gt_seg.get('iscrowd', 0) == 1:
            crowd_by_category[gt_seg['category_id']] = gt_id
            continue
        cat(gt_seg['category_id'])['fn'] += 1

    for pred_id, pred_seg in pred_segms.items():
        if pred_id in pred_matched:
            continue
        ignored = pairs.get((VOID, pred_id), 0)
        if pred_seg['category_id'] in crowd_by_category:
            ignored += pairs.get((crowd_by_category[pred_seg['category_id']], pred_id), 0)
        if ignored / pred_seg['area'] > 0.5:
            continue
        cat(pred_seg['category_id'])['fp'] += 1
    return stats


def reference_add(total: Dict[Hashable, Dict[str, float]],
                  image: Dict[Hashable, Dict[str, float]]) -> None:
    """Add the accumulators of one image to ``total`` in place."""
    for category_id, stat in image.items():
        into = total.setdefault(category_id, _new())
        for key in stat:
            into[key] += stat[key]


def reference_average(stats: Dict[Hashable, Dict[str, float]],
                      categories: Mapping[Hashable, Mapping[str, Any]],
                      isthing: Optional[bool]) -> Tuple[dict, dict]:
    """Averages over the split's categories with tp + fp + fn > 0 (0 if there are none)."""
    sums, n, per_class = [0.0, 0.0, 0.0], 0, {}
    for category_id, info in categories.items():
        if isthing is not None and isthing != (info['isthing'] == 1):
            continue
        stat = stats.get(category_id, _new())
        if stat['tp'] + stat['fp'] + stat['fn'] == 0:
            per_class[category_id] = {'pq': 0.0, 'sq': 0.0, 'rq': 0.0}
            continue
        n += 1
        denominator = stat['tp'] + 0.5 * stat['fp'] + 0.5 * stat['fn']
        pq = stat['iou'] / denominator
        sq = stat['iou'] / stat['tp'] if stat['tp'] else 0.0
        rq = stat['tp'] / denominator
        per_class[category_id] = {'pq': pq, 'sq': sq, 'rq': rq}
        sums = [sums[0] + pq, sums[1] + sq, sums[2] + rq]
    if n == 0:
        return {'pq': 0.0, 'sq': 0.0, 'rq': 0.0, 'n': 0}, per_class
    return {'pq': sums[0] / n, 'sq': sums[1] / n, 'rq': sums[2] / n, 'n': n}, per_class
