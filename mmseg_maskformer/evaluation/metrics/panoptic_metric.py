"""Panoptic quality (PQ, SQ, RQ) of panoptic predictions, as the COCO panoptic API computes it.

Predictions arrive as the model writes them: ``pred_panoptic_seg.sem_seg``
(1, H, W) int64 at the original image size, encoded as ``label + instance_id *
INSTANCE_OFFSET`` with ``label == num_classes`` on void pixels. Each image is
converted to the COCO panoptic form (segment ids 1..S, ``segments_info`` with
the dataset's category ids) and scored against its GT PNG right away, so only
small per-category counters are kept until the end.

Empty inputs have defined results: an image without any predicted segment
counts a false negative for every non-crowd GT segment (PQ 0 for their
categories; categories with neither GT nor predictions do not enter the
averages, as in ``pq_compute``). Zero evaluated images is an error, since no
category can be averaged. Written files are complete or absent: each PNG is
written atomically as its image is scored, together with its annotation record
(``{outfile_prefix}.panoptic.partial/<image>.json``), and the JSON atomically
at the end (the records are then removed). After an interruption the records
of every finished image remain; :func:`assemble_partial_annotations` turns them
into the JSON.
"""
import json
import os
import os.path as osp
import shutil
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from mmseg_maskformer.evaluation.functional import (PQStat, atomic_write_json,
                                                    pq_compute_single, pq_per_class_table,
                                                    pq_summary_table, read_panoptic_png,
                                                    summarize_pq, write_panoptic_png)
from mmseg_maskformer.registry import METRICS
from mmseg_maskformer.utils.panoptic import INSTANCE_OFFSET, OFFSET

#: Metric name suffix of each PQ split.
SPLIT_SUFFIXES = (('All', ''), ('Things', '_th'), ('Stuff', '_st'))


def panoptic_to_coco(panoptic: np.ndarray,
                     category_ids: Sequence[Any]) -> Tuple[np.ndarray, List[Dict[str, Any]]]:
    """Convert an in-memory panoptic map into COCO panoptic segment ids.

    Args:
        panoptic: ``label + instance_id * INSTANCE_OFFSET`` (H, W), integer,
            where ``label`` indexes ``category_ids`` and ``label ==
            len(category_ids)`` marks void pixels.
        category_ids: Dataset category id of every contiguous label (K,).

    Returns:
        ``(ids, segments_info)``: segment ids (H, W) int64, numbered 1..S in
        increasing order of the encoded value (0 on void), and one
        ``{'id', 'category_id'}`` per segment.

    Raises:
        ValueError: For negative values, labels above ``K`` or too many segments.
    """
    num_classes = len(category_ids)
    if num_classes >= INSTANCE_OFFSET:
        raise ValueError(f'{num_classes} classes do not fit the encoding with '
                         f'INSTANCE_OFFSET={INSTANCE_OFFSET}')
    values, inverse = np.unique(panoptic, return_inverse=True)
    labels = values % INSTANCE_OFFSET
    if values.size and (values[0] < 0 or labels.max() > num_classes):
        raise ValueError(f'panoptic values must be label + instance_id * {INSTANCE_OFFSET} '
                         f'with 0 <= label <= {num_classes} (void); got values '
                         f'[{values.min()}, {values.max()}] and labels up to {labels.max()}')
    is_segment = labels != num_classes
    if int(is_segment.sum()) >= OFFSET:
        raise ValueError(f'{int(is_segment.sum())} segments exceed the PNG id range')
    seg_ids = np.zeros(values.size, dtype=np.int64)
    seg_ids[is_segment] = np.arange(1, int(is_segment.sum()) + 1)
    ids = seg_ids[inverse.reshape(-1)].reshape(panoptic.shape)
    segments = [{'id': int(seg_id), 'category_id': _plain(category_ids[int(label)])}
                for seg_id, label in zip(seg_ids[is_segment], labels[is_segment])]
    return ids, segments


def partial_dir(outfile_prefix: str) -> str:
    """Folder of the per-image annotation records of a run writing ``outfile_prefix``."""
    return f'{outfile_prefix}.panoptic.partial'


def assemble_partial_annotations(outfile_prefix: str) -> str:
    """Writes ``{outfile_prefix}.panoptic.json`` from the records of an interrupted run.

    Args:
        outfile_prefix: The ``outfile_prefix`` of the interrupted run.

    Returns:
        The path of the JSON, holding one annotation per image whose PNG was
        written (sorted by file name).

    Raises:
        FileNotFoundError: If the run left no records.
    """
    folder = partial_dir(outfile_prefix)
    if not osp.isdir(folder):
        raise FileNotFoundError(f'{folder} does not exist: no records of an interrupted run')
    annotations = []
    for name in sorted(os.listdir(folder)):
        if name.endswith('.json') and not name.startswith('.'):
            with open(osp.join(folder, name)) as file:
                annotations.append(json.load(file))
    json_path = f'{outfile_prefix}.panoptic.json'
    atomic_write_json(json_path, {'annotations': annotations})
    return json_path


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value (for JSON); anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def prediction_file_name(sample: Mapping[str, Any]) -> str:
    """PNG name of a prediction: the image's file name with ``.png`` (else ``{img_id}.png``)."""
    img_path = sample.get('img_path')
    if img_path:
        return osp.splitext(osp.basename(img_path))[0] + '.png'
    return f'{sample["img_id"]}.png'


def _panoptic_map(sample: Mapping[str, Any]) -> np.ndarray:
    """The (H, W) int64 panoptic map of a prediction data sample."""
    if 'pred_panoptic_seg' not in sample:
        raise KeyError(f'image {sample.get("img_id")!r}: the data sample has no '
                       'pred_panoptic_seg; enable panoptic_on in the test_cfg of the model')
    pred = sample['pred_panoptic_seg']
    sem_seg = pred['sem_seg'] if isinstance(pred, Mapping) else pred.sem_seg
    if isinstance(sem_seg, torch.Tensor):
        sem_seg = sem_seg.detach().cpu().numpy()
    sem_seg = np.asarray(sem_seg)
    if sem_seg.ndim == 3 and sem_seg.shape[0] == 1:
        sem_seg = sem_seg[0]
    if sem_seg.ndim != 2:
        raise ValueError(f'image {sample.get("img_id")!r}: pred_panoptic_seg.sem_seg must be '
                         f'(1, H, W), got shape {sem_seg.shape}')
    return sem_seg.astype(np.int64, copy=False)


@METRICS.register_module()
class PanopticQualityMetric(BaseMetric):
    """PQ, SQ and RQ (percent) over all categories, things (``_th``) and stuff (``_st``).

    The numbers equal those of the COCO panoptic API's ``pq_compute`` (see
    :mod:`mmseg_maskformer.evaluation.functional.panoptic_quality`). The
    ground truth comes from each sample's metainfo: ``seg_map_path`` (GT
    panoptic PNG) and ``segments_info`` (``id``, ``category_id``, ``iscrowd``,
    optional ``area``), as :class:`PanopticFormatDataset` provides them; the
    categories from ``dataset_meta`` (``classes``, ``category_ids``,
    ``is_thing``, in contiguous-label order).

    Args:
        classwise: Also log the PQ, SQ, RQ of every category.
        format_only: Only write the predictions in the COCO panoptic results
            format (e.g. for test-dev) and return no metrics; needs
            ``outfile_prefix``. The GT is then not read.
        outfile_prefix: When given, write the predictions as PNGs into
            ``{outfile_prefix}.panoptic/`` (named after the images, ``.png``)
            and their ``annotations`` (``image_id``, ``file_name``,
            ``segments_info`` of ``{id, category_id}``) into
            ``{outfile_prefix}.panoptic.json``.
        collect_device: Device used to gather results across processes.
        prefix: Prefix of the metric names (none by default: ``PQ``, ``PQ_th``, ...).

    Example:
        >>> val_evaluator = dict(type='PanopticQualityMetric', classwise=True)
    """

    default_prefix: Optional[str] = None

    def __init__(self,
                 classwise: bool = False,
                 format_only: bool = False,
                 outfile_prefix: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if format_only and outfile_prefix is None:
            raise ValueError('format_only=True needs outfile_prefix: the prefix of the '
                             'prediction folder and JSON to write')
        self.classwise = classwise
        self.format_only = format_only
        self.outfile_prefix = outfile_prefix

    @property
    def seg_out_dir(self) -> Optional[str]:
        """Folder of the written prediction PNGs (``None`` without ``outfile_prefix``)."""
        return None if self.outfile_prefix is None else f'{self.outfile_prefix}.panoptic'

    def _categories(self) -> Tuple[Sequence[Any], Dict[Any, dict]]:
        """``(category_ids in label order, category id -> {id, name, isthing})``."""
        meta = self.dataset_meta or {}
        missing = [key for key in ('classes', 'category_ids', 'is_thing') if key not in meta]
        if missing:
            raise ValueError(f'{type(self).__name__} needs dataset_meta with classes, '
                             f'category_ids and is_thing (PanopticFormatDataset provides '
                             f'them); missing {missing}')
        classes, category_ids, is_thing = (meta['classes'], meta['category_ids'],
                                           meta['is_thing'])
        if not len(classes) == len(category_ids) == len(is_thing):
            raise ValueError(f'dataset_meta has {len(classes)} classes, {len(category_ids)} '
                             f'category_ids and {len(is_thing)} is_thing entries')
        categories = {_plain(cid): {'id': _plain(cid), 'name': name, 'isthing': int(thing)}
                      for name, cid, thing in zip(classes, category_ids, is_thing)}
        return category_ids, categories

    def process(self, data_batch: Any, data_samples: Sequence[Mapping[str, Any]]) -> None:
        """Score (and, with ``outfile_prefix``, write) each prediction.

        Args:
            data_batch: Unused.
            data_samples: Prediction samples as dicts with ``pred_panoptic_seg``
                and the metainfo ``img_id``, ``img_path``, ``seg_map_path``,
                ``segments_info`` and ``ori_shape``.
        """
        category_ids, categories = self._categories()
        for sample in data_samples:
            self.results.append(self._process_one(sample, category_ids, categories))

    def _process_one(self, sample: Mapping[str, Any], category_ids: Sequence[Any],
                     categories: Dict[Any, dict]) -> Dict[str, Any]:
        """``{'stat': PQStat}`` unless format_only, plus ``'annotation'`` when writing."""
        image_id = _plain(sample['img_id'])
        panoptic = _panoptic_map(sample)
        ori_shape = sample.get('ori_shape')
        if ori_shape is not None and tuple(ori_shape[:2]) != panoptic.shape:
            raise ValueError(f'image {image_id!r}: the panoptic prediction has shape '
                             f'{panoptic.shape}, the original image {tuple(ori_shape[:2])}; '
                             'predictions must be at the original image size')
        pred_ids, segments = panoptic_to_coco(panoptic, category_ids)
        result: Dict[str, Any] = {}
        if self.seg_out_dir is not None:
            file_name = prediction_file_name(sample)
            os.makedirs(self.seg_out_dir, exist_ok=True)
            write_panoptic_png(osp.join(self.seg_out_dir, file_name), pred_ids)
            result['annotation'] = dict(image_id=image_id, file_name=file_name,
                                        segments_info=segments)
            records = partial_dir(self.outfile_prefix)
            os.makedirs(records, exist_ok=True)
            atomic_write_json(osp.join(records, osp.splitext(file_name)[0] + '.json'),
                              result['annotation'])
        if not self.format_only:
            missing = [key for key in ('seg_map_path', 'segments_info') if key not in sample]
            if missing:
                raise KeyError(f'image {image_id!r}: the data sample lacks {missing}, needed '
                               'to read the ground truth')
            gt_ids = read_panoptic_png(sample['seg_map_path'])
            result['stat'] = pq_compute_single(gt_ids, sample['segments_info'], pred_ids,
                                               segments, categories, image_id=image_id)
        return result

    def compute_metrics(self, results: List[Dict[str, Any]]) -> Dict[str, float]:
        """Write the prediction JSON if asked and sum the per-image statistics.

        Returns:
            ``PQ``, ``SQ``, ``RQ``, ``PQ_th``, ``SQ_th``, ``RQ_th``, ``PQ_st``,
            ``SQ_st``, ``RQ_st`` in percent (an empty dict when ``format_only``);
            a split without any GT or predicted segment scores 0.

        Raises:
            ValueError: When no image was processed (unless ``format_only``).
        """
        if self.outfile_prefix is not None:
            json_path = f'{self.outfile_prefix}.panoptic.json'
            os.makedirs(osp.dirname(osp.abspath(json_path)), exist_ok=True)
            atomic_write_json(json_path, {'annotations': [r['annotation'] for r in results]})
            shutil.rmtree(partial_dir(self.outfile_prefix), ignore_errors=True)
            print_log(f'panoptic predictions written to {json_path} and {self.seg_out_dir}/',
                      logger='current')
        if self.format_only:
            return {}
        if not results:
            raise ValueError(f'{type(self).__name__}: no image was evaluated (empty test '
                             'dataset?); PQ is undefined without images')
        _, categories = self._categories()
        stat = PQStat()
        for result in results:
            stat += result['stat']
        summary = summarize_pq(stat, categories)
        print_log('Panoptic quality:\n' + pq_summary_table(summary), logger='current')
        if self.classwise:
            print_log('Per-category panoptic quality:\n' +
                      pq_per_class_table(summary, categories, stat), logger='current')
        return {f'{key}{suffix}': 100.0 * summary[split][key.lower()]
                for split, suffix in SPLIT_SUFFIXES for key in ('PQ', 'SQ', 'RQ')}
