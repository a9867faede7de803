"""Panoptic quality (PQ = SQ x RQ) with the rules of the COCO panoptic API.

The numbers equal those of ``pq_compute`` of the COCO panoptic API (panopticapi):

- A prediction and a ground-truth (GT) segment *match* when they have the same
  category, the GT segment is not a crowd region and their IoU exceeds 0.5.
  The union leaves out the pixels of the prediction that are void in the GT:
  ``union = area(pred) + area(gt) - inter - inter(pred, void)``. A match adds
  1 to ``tp`` and its IoU to ``iou`` of the category.
- Every unmatched non-crowd GT segment adds 1 to ``fn``; crowd segments never do.
- An unmatched prediction adds 1 to ``fp`` unless more than half of its area
  lies on GT void pixels plus the GT crowd region of its category (when a
  category has several crowd segments, only the last one listed counts).
- The area of a prediction is its pixel count in its PNG; the area of a GT
  segment is its ``area`` field (the pixel count in the GT PNG when the field
  is missing or ``None``). GT pixels whose id is not listed are neither void
  nor part of a segment; void is segment id ``0``.
- Per category ``pq = iou / (tp + fp / 2 + fn / 2)``, ``sq = iou / tp``,
  ``rq = tp / (tp + fp / 2 + fn / 2)``; PQ, SQ and RQ of a split (all, things,
  stuff) average the categories with ``tp + fp + fn > 0``.

Two deliberate differences: a split without any such category reports zeros
with ``n == 0`` (the API divides by zero), and inconsistent predictions raise
:class:`PanopticFormatError`, a ``KeyError`` (as in the API) that is also a
``ValueError``.

All per-pixel work is one ``np.unique`` over ``gt_id * OFFSET + pred_id``; the
rest works on segments.
"""
import json
import os
import os.path as osp
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Dict, Hashable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image
from terminaltables import AsciiTable

from mmseg_maskformer.utils.panoptic import OFFSET, VOID, id2rgb, rgb2id
from mmseg_maskformer.utils.atomic_files import atomic_save_png

#: The three summaries of a PQ evaluation: name and ``isthing`` filter.
PQ_SPLITS: Tuple[Tuple[str, Optional[bool]], ...] = (
    ('All', None), ('Things', True), ('Stuff', False))

PathLike = Union[str, os.PathLike]


class PanopticFormatError(KeyError, ValueError):
    """A prediction contradicts its ``segments_info`` or names an unknown category."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


@dataclass
class PQStatCat:
    """Accumulators of one category: summed IoU of matches, tp, fp, fn."""

    iou: float = 0.0
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def __iadd__(self, other: 'PQStatCat') -> 'PQStatCat':
        self.iou += other.iou
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        return self


class PQStat:
    """Per-category PQ accumulators, summed over images with ``+=``.

    ``stat[category_id]`` returns (and creates) the :class:`PQStatCat` of a category.
    """

    def __init__(self) -> None:
        self.pq_per_cat: Dict[Hashable, PQStatCat] = defaultdict(PQStatCat)

    def __getitem__(self, category_id: Hashable) -> PQStatCat:
        return self.pq_per_cat[category_id]

    def __iadd__(self, other: 'PQStat') -> 'PQStat':
        for category_id, stat in other.pq_per_cat.items():
            self.pq_per_cat[category_id] += stat
        return self

    def pq_average(self, categories: Mapping[Hashable, Mapping[str, Any]],
                   isthing: Optional[bool] = None) -> Tuple[Dict[str, float], Dict[Hashable, dict]]:
        """Average PQ, SQ and RQ over the categories of a split.

        Args:
            categories: Category id -> dict with ``isthing`` (0/1 or bool).
            isthing: ``True`` for things only, ``False`` for stuff only,
                ``None`` for all categories.

        Returns:
            ``({'pq', 'sq', 'rq', 'n'}, per_class)``: averages (fractions) over
            the ``n`` categories of the split with ``tp + fp + fn > 0``, and
            category id -> ``{'pq', 'sq', 'rq'}`` for every category of the
            split (zeros for categories never seen).
        """
        totals = {'pq': 0.0, 'sq': 0.0, 'rq': 0.0}
        per_class: Dict[Hashable, dict] = {}
        n = 0
        for category_id, info in categories.items():
            if isthing is not None and isthing != (info['isthing'] == 1):
                continue
            stat = self.pq_per_cat.get(category_id, PQStatCat())
            if stat.tp + stat.fp + stat.fn == 0:
                per_class[category_id] = {'pq': 0.0, 'sq': 0.0, 'rq': 0.0}
                continue
            n += 1
            denominator = stat.tp + 0.5 * stat.fp + 0.5 * stat.fn
            scores = {'pq': stat.iou / denominator,
                      'sq': stat.iou / stat.tp if stat.tp != 0 else 0.0,
                      'rq': stat.tp / denominator}
            per_class[category_id] = scores
            for key, value in scores.items():
                totals[key] += value
        average = {key: (value / n if n else 0.0) for key, value in totals.items()}
        return dict(average, n=n), per_class


def _check_id_map(ids: np.ndarray, what: str, image_id: Any) -> np.ndarray:
    """Validate a segment-id map (H, W) and return it as a flat int64 array (H * W,)."""
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f'image {image_id!r}: the {what} id map must be a 2-D integer array, '
                         f'got shape {ids.shape} and dtype {ids.dtype}')
    flat = ids.reshape(-1).astype(np.int64, copy=False)
    if flat.size and (flat.min() < 0 or flat.max() >= OFFSET):
        raise ValueError(f'image {image_id!r}: {what} segment ids must lie in [0, {OFFSET}), '
                         f'got [{flat.min()}, {flat.max()}]')
    return flat


def _index_of(ids: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Position of each ``query`` value in ``ids`` (N,), or -1; returns (M,) int64."""
    if ids.size == 0:
        return np.full(query.shape, -1, dtype=np.int64)
    order = np.argsort(ids, kind='stable')
    pos = np.minimum(np.searchsorted(ids, query, sorter=order), ids.size - 1)
    candidate = order[pos]
    return np.where(ids[candidate] == query, candidate, -1)


def _segment_areas(segment_of_pair: np.ndarray, counts: np.ndarray) -> Tuple[np.ndarray,
                                                                           np.ndarray]:
    """Pixel count of every id from the pair histogram: ``(ids (S,), areas (S,))``."""
    ids, inverse = np.unique(segment_of_pair, return_inverse=True)
    areas = np.bincount(inverse.reshape(-1), weights=counts, minlength=ids.size)
    return ids, areas.astype(np.int64)


def _check_predictions(png_ids: np.ndarray, pred_segms: Mapping[int, dict],
                       categories: Mapping[Hashable, Any], image_id: Any) -> None:
    """Raise :class:`PanopticFormatError` where the prediction PNG and JSON disagree.

    Args:
        png_ids: Sorted distinct ids (S,) of the prediction PNG.
        pred_segms: Segment id -> segment of the prediction JSON.
        categories: Known category ids.
        image_id: Image id for the messages.
    """
    for seg_id in png_ids.tolist():
        if seg_id not in pred_segms:
            if seg_id == VOID:
                continue
            raise PanopticFormatError(
                f'image {image_id!r}: segment id {seg_id} occurs in the prediction PNG but '
                'not in its segments_info')
        category_id = pred_segms[seg_id]['category_id']
        if category_id not in categories:
            raise PanopticFormatError(
                f'image {image_id!r}: predicted segment {seg_id} has unknown category_id '
                f'{category_id!r}')
    absent = sorted(set(pred_segms) - set(png_ids.tolist()))
    if absent:
        raise PanopticFormatError(
            f'image {image_id!r}: segment ids {absent} are listed in the prediction '
            'segments_info but do not occur in its PNG')


def _pair_histogram(gt_flat: np.ndarray, pred_flat: np.ndarray) -> Tuple[np.ndarray, ...]:
    """Intersections of all (gt id, pred id) pairs of two flat id maps (H * W,).

    Returns:
        ``(keys, gt_of_pair, pred_of_pair, counts)``, each (P,), sorted by
        ``key = gt_id * OFFSET + pred_id``.
    """
    keys, counts = np.unique(gt_flat * OFFSET + pred_flat, return_counts=True)
    return keys, keys // OFFSET, keys % OFFSET, counts.astype(np.int64)


def _pair_count(keys: np.ndarray, counts: np.ndarray, gt_id: int, pred_id: int) -> int:
    """Intersection of segments ``gt_id`` and ``pred_id`` (0 if they do not touch)."""
    key = gt_id * OFFSET + pred_id
    pos = int(np.searchsorted(keys, key))
    return int(counts[pos]) if pos < keys.size and keys[pos] == key else 0


def pq_compute_single(gt_ids: np.ndarray, gt_segments: Sequence[Mapping[str, Any]],
                      pred_ids: np.ndarray, pred_segments: Sequence[Mapping[str, Any]],
                      categories: Mapping[Hashable, Any], image_id: Any = None) -> PQStat:
    """PQ accumulators of one image (see the module docstring for the rules).

    Args:
        gt_ids: GT segment ids (H, W), integer; 0 is void.
        gt_segments: GT ``segments_info``: ``id``, ``category_id``,
            ``iscrowd`` (0/1, default 0), optional ``area``.
        pred_ids: Predicted segment ids (H, W), integer; 0 is void.
        pred_segments: Predicted ``segments_info``: ``id``, ``category_id``.
        categories: Category id -> category dict (only the keys are used here).
        image_id: Image id, used in error messages.

    Returns:
        The :class:`PQStat` of the image.

    Raises:
        ValueError: If the maps differ in shape or hold ids outside [0, 256 ** 3).
        PanopticFormatError: If a non-void id of the prediction PNG is not
            listed, a listed prediction id is not in its PNG, or a prediction
            has a category id absent from ``categories``.
    """
    if gt_ids.shape != pred_ids.shape:
        raise ValueError(f'image {image_id!r}: ground truth has shape {gt_ids.shape}, '
                         f'the prediction {pred_ids.shape}')
    gt_flat = _check_id_map(gt_ids, 'ground-truth', image_id)
    pred_flat = _check_id_map(pred_ids, 'prediction', image_id)
    gt_segms = _index_segments(gt_segments, 'ground-truth', image_id)
    pred_segms = _index_segments(pred_segments, 'prediction', image_id)
    keys, gt_of_pair, pred_of_pair, inter = _pair_histogram(gt_flat, pred_flat)
    png_pred_ids, png_pred_areas = _segment_areas(pred_of_pair, inter)
    _check_predictions(png_pred_ids, pred_segms, categories, image_id)

    gt = _segment_table(gt_segms, *_segment_areas(gt_of_pair, inter), listed_area=True)
    pred = _segment_table(pred_segms, png_pred_ids, png_pred_areas, listed_area=False)
    gt_idx = _index_of(gt['ids'], gt_of_pair)
    pred_idx = _index_of(pred['ids'], pred_of_pair)
    on_void = (gt_of_pair == VOID) & (pred_idx >= 0)
    void_inter = np.zeros(pred['ids'].size, dtype=np.int64)
    void_inter[pred_idx[on_void]] = inter[on_void]

    stat = PQStat()
    gt_matched, pred_matched = _count_matches(stat, gt, pred, gt_idx, pred_idx, inter,
                                              void_inter)
    crowd_of_category = _count_false_negatives(stat, gt, gt_matched)
    _count_false_positives(stat, pred, pred_matched, void_inter, crowd_of_category, keys, inter)
    return stat


def _index_segments(segments: Sequence[Mapping[str, Any]], what: str,
                    image_id: Any) -> Dict[int, Mapping[str, Any]]:
    """Segment id -> segment (a repeated id keeps the last entry, as in the API)."""
    for seg in segments:
        if 'id' not in seg or 'category_id' not in seg:
            raise ValueError(f'image {image_id!r}: {what} segment {dict(seg)} lacks id or '
                             'category_id')
    return {int(seg['id']): seg for seg in segments}


def _segment_table(segms: Mapping[int, Mapping[str, Any]], png_ids: np.ndarray,
                   png_areas: np.ndarray, listed_area: bool) -> Dict[str, Any]:
    """Arrays of the listed segments, in listing order (N segments).

    Args:
        segms: Segment id -> segment dict.
        png_ids: Distinct ids (S,) of the PNG; ``png_areas`` (S,) their pixel counts.
        listed_area: Use the ``area`` field where it is given (GT segments);
            otherwise always the PNG count (predictions).

    Returns:
        ``ids`` (N,) int64, ``area`` (N,) float64, ``crowd`` (N,) bool,
        ``category``: list of N category ids.
    """
    ids = np.fromiter(segms.keys(), dtype=np.int64, count=len(segms))
    png_index = _index_of(png_ids, ids)
    # index -1 (not in the PNG) picks the appended zero
    area = np.append(png_areas, 0)[png_index].astype(np.float64)
    if listed_area:
        for i, seg in enumerate(segms.values()):
            if seg.get('area') is not None:
                area[i] = seg['area']
    crowd = np.array([seg.get('iscrowd', 0) == 1 for seg in segms.values()], dtype=bool)
    return dict(ids=ids, area=area, crowd=crowd.reshape(-1),
                category=[seg['category_id'] for seg in segms.values()])


def _count_matches(stat: PQStat, gt: Dict[str, Any], pred: Dict[str, Any],
                   gt_idx: np.ndarray, pred_idx: np.ndarray, inter: np.ndarray,
                   void_inter: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Add true positives of the pairs (P,) to ``stat``; return matched masks (G,), (N,)."""
    categories = {cat: i for i, cat in enumerate(dict.fromkeys(gt['category'] +
                                                                pred['category']))}
    gt_cat = np.array([categories[c] for c in gt['category']], dtype=np.int64)
    pred_cat = np.array([categories[c] for c in pred['category']], dtype=np.int64)
    pairs = np.nonzero((gt_idx >= 0) & (pred_idx >= 0))[0]
    g, p = gt_idx[pairs], pred_idx[pairs]
    keep = ~gt['crowd'][g] & (gt_cat[g] == pred_cat[p])
    pairs, g, p = pairs[keep], g[keep], p[keep]
    union = pred['area'][p] + gt['area'][g] - inter[pairs] - void_inter[p]
    with np.errstate(divide='ignore', invalid='ignore'):
        iou = inter[pairs] / union
    match = iou > 0.5
    gt_matched = np.zeros(gt['ids'].size, dtype=bool)
    pred_matched = np.zeros(pred['ids'].size, dtype=bool)
    gt_matched[g[match]] = True
    pred_matched[p[match]] = True
    for gt_index, pair_iou in zip(g[match].tolist(), iou[match].tolist()):
        cat_stat = stat[gt['category'][gt_index]]
        cat_stat.tp += 1
        cat_stat.iou += pair_iou
    return gt_matched, pred_matched


def _count_false_negatives(stat: PQStat, gt: Dict[str, Any],
                           gt_matched: np.ndarray) -> Dict[Hashable, int]:
    """Add false negatives to ``stat``; return category -> id of its (last) crowd segment."""
    crowd_of_category: Dict[Hashable, int] = {}
    for i, category_id in enumerate(gt['category']):
        if gt_matched[i]:
            continue
        if gt['crowd'][i]:
            crowd_of_category[category_id] = int(gt['ids'][i])
            continue
        stat[category_id].fn += 1
    return crowd_of_category


def _count_false_positives(stat: PQStat, pred: Dict[str, Any], pred_matched: np.ndarray,
                           void_inter: np.ndarray, crowd_of_category: Dict[Hashable, int],
                           keys: np.ndarray, inter: np.ndarray) -> None:
    """Add the unmatched predictions not mostly on void or same-class crowd to ``stat``."""
    for i, category_id in enumerate(pred['category']):
        if pred_matched[i]:
            continue
        ignored = int(void_inter[i])
        if category_id in crowd_of_category:
            ignored += _pair_count(keys, inter, crowd_of_category[category_id],
                                   int(pred['ids'][i]))
        if ignored / pred['area'][i] > 0.5:
            continue
        stat[category_id].fp += 1


def read_panoptic_png(path: PathLike) -> np.ndarray:
    """Read a COCO panoptic PNG as segment ids.

    Args:
        path: An RGB (or RGBA, alpha ignored) PNG.

    Returns:
        Segment ids (H, W) int64.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the image is not RGB/RGBA.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'panoptic PNG {path} does not exist')
    with Image.open(path) as image:
        if image.mode not in ('RGB', 'RGBA'):
            raise ValueError(f'panoptic PNG {path} has mode {image.mode}; expected RGB')
        rgb = np.asarray(image.convert('RGB'))
    return rgb2id(rgb)


def write_panoptic_png(path: PathLike, ids: np.ndarray) -> None:
    """Write segment ids (H, W) as a COCO panoptic (RGB) PNG, atomically."""
    atomic_save_png(path, id2rgb(ids))


def summarize_pq(stat: PQStat, categories: Mapping[Hashable, Mapping[str, Any]]) -> dict:
    """``{'All', 'Things', 'Stuff': {'pq', 'sq', 'rq', 'n'}, 'per_class': {id: {...}}}``."""
    results: dict = {}
    for name, isthing in PQ_SPLITS:
        results[name], per_class = stat.pq_average(categories, isthing)
        if name == 'All':
            results['per_class'] = per_class
    return results


def _load_json(source: Union[PathLike, Mapping], what: str) -> Mapping:
    """A JSON object given as a dict or a path."""
    if isinstance(source, Mapping):
        return source
    if not osp.isfile(source):
        raise FileNotFoundError(f'{what} JSON {source} does not exist')
    with open(source, encoding='utf-8') as file:
        return json.load(file)


def _folder(folder: Optional[PathLike], json_source: Union[PathLike, Mapping],
            what: str) -> str:
    """The PNG folder; by default the JSON path without ``.json``, as in the API."""
    if folder is None:
        if isinstance(json_source, Mapping):
            raise ValueError(f'the {what} PNG folder is needed when the JSON is a dict')
        folder = str(json_source)[:-len('.json')] if str(json_source).endswith(
            '.json') else str(json_source)
    if not osp.isdir(folder):
        raise FileNotFoundError(f'{what} PNG folder {folder} does not exist')
    return str(folder)


def _load_inputs(gt_json: Union[PathLike, Mapping], pred_json: Union[PathLike, Mapping]
                 ) -> Tuple[Mapping, Mapping]:
    """Load both JSONs and check the keys every annotation needs."""
    gt = _load_json(gt_json, 'ground-truth')
    pred = _load_json(pred_json, 'prediction')
    for data, what, keys in ((gt, 'ground-truth', ('categories', 'annotations')),
                             (pred, 'prediction', ('annotations', ))):
        missing = [key for key in keys if key not in data]
        if missing:
            raise ValueError(f'the {what} JSON lacks {missing}')
        for ann in data['annotations']:
            missing = [key for key in ('image_id', 'file_name', 'segments_info')
                       if key not in ann]
            if missing:
                raise ValueError(f'an annotation of the {what} JSON (image_id '
                                 f'{ann.get("image_id")!r}) lacks {missing}')
    return gt, pred


def pq_compute_stat(gt_json: Union[PathLike, Mapping], gt_folder: Optional[PathLike],
                    pred_json: Union[PathLike, Mapping], pred_folder: Optional[PathLike]
                    ) -> Tuple[PQStat, Dict[Hashable, dict]]:
    """The summed :class:`PQStat` of a prediction and the GT categories (id -> dict).

    Arguments and errors are those of :func:`pq_compute`.
    """
    gt, pred = _load_inputs(gt_json, pred_json)
    gt_dir = _folder(gt_folder, gt_json, 'ground-truth')
    pred_dir = _folder(pred_folder, pred_json, 'prediction')
    categories = {cat['id']: cat for cat in gt['categories']}
    pred_annotations = {ann['image_id']: ann for ann in pred['annotations']}
    stat = PQStat()
    for gt_ann in gt['annotations']:
        image_id = gt_ann['image_id']
        if image_id not in pred_annotations:
            raise ValueError(f'no prediction for the image with id {image_id!r}')
        pred_ann = pred_annotations[image_id]
        stat += pq_compute_single(
            read_panoptic_png(osp.join(gt_dir, gt_ann['file_name'])), gt_ann['segments_info'],
            read_panoptic_png(osp.join(pred_dir, pred_ann['file_name'])),
            pred_ann['segments_info'], categories, image_id=image_id)
    return stat, categories


def pq_compute(gt_json: Union[PathLike, Mapping], gt_folder: Optional[PathLike],
               pred_json: Union[PathLike, Mapping], pred_folder: Optional[PathLike]) -> dict:
    """Evaluate a COCO panoptic prediction against its ground truth.

    Images are paired by ``image_id``; predictions of images absent from the
    GT are ignored.

    Args:
        gt_json: GT panoptic JSON (path or loaded dict) with ``categories`` and
            ``annotations``.
        gt_folder: Folder of the GT PNGs (``None``: ``gt_json`` without ``.json``).
        pred_json: Prediction JSON with ``annotations`` (``image_id``,
            ``file_name``, ``segments_info`` of ``{id, category_id}``).
        pred_folder: Folder of the prediction PNGs (``None``: ``pred_json``
            without ``.json``).

    Returns:
        ``{'All', 'Things', 'Stuff': {'pq', 'sq', 'rq', 'n'}, 'per_class':
        {category_id: {'pq', 'sq', 'rq'}}}`` (fractions), like the API.

    Raises:
        FileNotFoundError: For a missing JSON, folder or PNG.
        ValueError: If a GT image has no prediction, or a key is missing.
        PanopticFormatError: For a prediction inconsistent with its PNG.
    """
    return summarize_pq(*pq_compute_stat(gt_json, gt_folder, pred_json, pred_folder))


def pq_summary_table(results: Mapping[str, Any]) -> str:
    """A table of PQ, SQ, RQ (percent) and the category count of All/Things/Stuff."""
    rows: List[List[str]] = [['', 'PQ', 'SQ', 'RQ', 'categories']]
    for name, _ in PQ_SPLITS:
        split = results[name]
        rows.append([name] + [f'{100 * split[key]:.3f}' for key in ('pq', 'sq', 'rq')] +
                    [str(split['n'])])
    table = AsciiTable(rows)
    table.justify_columns = {i: 'right' for i in range(1, 5)}
    return table.table


def pq_per_class_table(results: Mapping[str, Any],
                       categories: Mapping[Hashable, Mapping[str, Any]],
                       stat: Optional[PQStat] = None) -> str:
    """A table of PQ, SQ, RQ (percent) of every category, in ``categories`` order.

    Args:
        results: Output of :func:`summarize_pq` / :func:`pq_compute`.
        categories: Category id -> dict with ``isthing`` and ``name``.
        stat: When given, the table adds TP, FP and FN and shows ``-`` for
            categories that take no part in the averages (tp + fp + fn == 0).
    """
    header = ['id', 'category', 'kind', 'PQ', 'SQ', 'RQ']
    rows: List[List[str]] = [header + (['TP', 'FP', 'FN'] if stat is not None else [])]
    for category_id, info in categories.items():
        scores = results['per_class'].get(category_id, {'pq': 0.0, 'sq': 0.0, 'rq': 0.0})
        row = [str(category_id), str(info.get('name', category_id)),
               'thing' if info['isthing'] == 1 else 'stuff']
        values = [f'{100 * scores[key]:.3f}' for key in ('pq', 'sq', 'rq')]
        if stat is not None:
            counts = stat.pq_per_cat.get(category_id, PQStatCat())
            if counts.tp + counts.fp + counts.fn == 0:
                values = ['-'] * 3
            values += [str(counts.tp), str(counts.fp), str(counts.fn)]
        rows.append(row + values)
    table = AsciiTable(rows)
    table.justify_columns = {i: 'right' for i in range(3, len(rows[0]))}
    return table.table
