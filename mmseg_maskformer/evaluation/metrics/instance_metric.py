"""Mask and box AP through pycocotools for mask-classification models.

Empty inputs have defined results. Zero detections over the whole test set
(pycocotools' ``loadRes`` fails on an empty list, and mmdet then returns no
metric at all) are scored as an empty result set: AP and AR 0 where the
ground truth has instances, -1 (COCO's "undefined") for an area range without
any. Zero evaluated images is an error. The result JSON files are written
atomically.
"""
import copy
import os
import os.path as osp
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmdet.evaluation.metrics import CocoMetric
from mmengine.logging import print_log

from mmseg_maskformer.datasets.coco_format import check_annotation_categories
from mmseg_maskformer.registry import METRICS


def label_to_annotation_index(classes: Sequence[str], annotation_categories: Dict[int, dict]
                              ) -> Tuple[np.ndarray, List[int]]:
    """Map the model's contiguous labels to categories of a COCO instance file.

    Labels are matched by class name, so one model trained on all classes of a
    panoptic dataset (things and stuff, e.g. COCO's 133) is evaluated against an
    instance file that holds only the things (COCO's 80).

    Args:
        classes: Class names in contiguous-label order (the dataset's ``classes``).
        annotation_categories: ``COCO.cats`` of the instance annotation file
            (category id -> dict with ``name``).

    Returns:
        ``(index, cat_ids)``: ``index`` (K,) int64 maps label ``k`` to a position in
        ``cat_ids`` or -1 for classes absent from the file (stuff); ``cat_ids`` are
        the matched category ids in label order.

    Raises:
        ValueError: If no class name occurs in the annotation file.
    """
    name_to_id = {cat['name']: int(cat_id) for cat_id, cat in annotation_categories.items()}
    index = np.full(len(classes), -1, dtype=np.int64)
    cat_ids: List[int] = []
    for label, name in enumerate(classes):
        if name in name_to_id:
            index[label] = len(cat_ids)
            cat_ids.append(name_to_id[name])
    if not cat_ids:
        raise ValueError(
            'none of the dataset classes occurs (by name) in the instance annotation file; '
            f'classes start with {list(classes)[:5]}, file categories with '
            f'{list(name_to_id)[:5]}')
    return index, cat_ids


def explicit_annotation_index(label_to_category_id: Sequence[int], num_classes: int,
                              annotation_categories: Dict[int, dict]
                              ) -> Tuple[np.ndarray, List[int]]:
    """Like :func:`label_to_annotation_index`, from an explicit label -> id list.

    Args:
        label_to_category_id: Category id per contiguous label, -1 for none.
        num_classes: Number of dataset classes K (the list's required length).
        annotation_categories: ``COCO.cats`` of the instance annotation file.

    Returns:
        ``(index, cat_ids)`` as :func:`label_to_annotation_index`.

    Raises:
        ValueError: If the list length is not K, an id is absent from the file
            or an id is given twice.
    """
    if len(label_to_category_id) != num_classes:
        raise ValueError(f'label_to_category_id has {len(label_to_category_id)} entries, '
                         f'the dataset {num_classes} classes')
    given = [i for i in label_to_category_id if i >= 0]
    unknown = sorted(set(given) - {int(i) for i in annotation_categories})
    if unknown:
        raise ValueError(f'label_to_category_id names category ids {unknown} that the '
                         'instance annotation file does not have')
    if len(set(given)) != len(given):
        raise ValueError('label_to_category_id maps two labels to one category id')
    index = np.full(num_classes, -1, dtype=np.int64)
    cat_ids: List[int] = []
    for label, cat_id in enumerate(label_to_category_id):
        if cat_id >= 0:
            index[label] = len(cat_ids)
            cat_ids.append(int(cat_id))
    return index, cat_ids


def empty_results(coco_gt: Any) -> Any:
    """A COCO results object without detections, for ``COCOeval``.

    Args:
        coco_gt: The ground-truth ``COCO`` object.

    Returns:
        An object of the same class holding the images and categories of
        ``coco_gt`` and no annotation.
    """
    res = type(coco_gt)()
    res.dataset = dict(images=list(coco_gt.dataset.get('images', [])),
                       categories=copy.deepcopy(coco_gt.dataset.get('categories', [])),
                       annotations=[])
    res.createIndex()
    return res


def _accepting_empty_results(coco_gt: Any) -> Any:
    """``coco_gt`` whose ``loadRes`` also accepts an empty list of detections."""

    class EmptyTolerantCOCO(type(coco_gt)):
        """The ground truth with ``loadRes([])`` returning :func:`empty_results`."""

        def loadRes(self, resFile):  # noqa: N802, N803  (pycocotools' names)
            if isinstance(resFile, list) and not resFile:
                return empty_results(self)
            return super().loadRes(resFile)

    safe = EmptyTolerantCOCO.__new__(EmptyTolerantCOCO)
    safe.__dict__.update(coco_gt.__dict__)
    return safe


@METRICS.register_module()
class CocoInstanceMetric(CocoMetric):
    """COCO mask AP and box AP (boxes from the predicted masks) via pycocotools.

    mmdet's ``CocoMetric`` with two differences: ``ann_file`` is required (the
    ground truth is read from it) and predicted labels are mapped to the file's
    categories by class name (:func:`label_to_annotation_index`), so a model
    whose classes also include stuff is scored on the things of the file.
    Predictions of classes absent from the file are dropped with a warning.

    Args:
        ann_file: COCO instance annotation file of the evaluated split.
        label_to_category_id: Optional explicit mapping, the annotation-file
            category id of every contiguous label (-1 for labels without one),
            for files whose names differ from the dataset's classes (ADE20K's
            instance file names its 100 things differently from the panoptic
            file). Class names are matched when it is None.
        **kwargs: The other arguments of mmdet's ``CocoMetric``; ``format_only``
            with ``outfile_prefix`` writes ``{prefix}.segm.json`` /
            ``{prefix}.bbox.json`` in the COCO results format for an
            evaluation server.

    Raises:
        ValueError: Naming ``ann_file``, the image and the id, when an
            annotation's ``category_id`` is not among its ``categories``; in
            ``compute_metrics``, when no image was evaluated.
    """

    default_prefix: Optional[str] = 'coco'

    def __init__(self,
                 ann_file: Optional[str] = None,
                 label_to_category_id: Optional[Sequence[int]] = None,
                 **kwargs) -> None:
        if ann_file is None:
            raise ValueError(f'{type(self).__name__} needs ann_file, the COCO instance '
                             'annotation file of the evaluated split')
        super().__init__(ann_file=ann_file, **kwargs)
        check_annotation_categories(self._coco_api.dataset, ann_file)
        self._coco_api = _accepting_empty_results(self._coco_api)
        self.label_to_category_id = (None if label_to_category_id is None else
                                     [int(i) for i in label_to_category_id])
        self._label_index: Optional[np.ndarray] = None
        self._warned = False

    def _mapping(self) -> np.ndarray:
        if self._label_index is None:
            if self.label_to_category_id is not None:
                self._label_index, cat_ids = explicit_annotation_index(
                    self.label_to_category_id, len(self.dataset_meta['classes']),
                    self._coco_api.cats)
            else:
                self._label_index, cat_ids = label_to_annotation_index(
                    self.dataset_meta['classes'], self._coco_api.cats)
            if self.cat_ids is None:
                self.cat_ids = cat_ids
        return self._label_index

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Remap the labels of ``pred_instances`` and store the results."""
        index = torch.from_numpy(self._mapping())
        remapped = []
        for sample in data_samples:
            pred = dict(sample['pred_instances'])
            target = index.to(pred['labels'].device)[pred['labels']]
            keep = target >= 0
            if not bool(keep.all()) and not self._warned:
                print_log('predictions of classes absent from the instance annotation file '
                          'are not evaluated', logger='current', level=30)
                self._warned = True
            pred = {k: v[keep] for k, v in pred.items()}
            pred['labels'] = target[keep]
            remapped.append(dict(sample, pred_instances=pred))
        super().process(data_batch, remapped)

    def results2json(self, results: Sequence[dict], outfile_prefix: str) -> dict:
        """mmdet's ``results2json`` with every file written atomically.

        The files are written into a hidden temporary folder next to
        ``outfile_prefix`` and moved to ``{outfile_prefix}.bbox.json`` /
        ``.segm.json`` with ``os.replace``.
        """
        folder = osp.dirname(osp.abspath(outfile_prefix))
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder, prefix='.coco-results.') as tmp:
            tmp_prefix = osp.join(tmp, 'results')
            written = super().results2json(results, tmp_prefix)
            final = {}
            for key, path in written.items():
                target = outfile_prefix + path[len(tmp_prefix):]
                if osp.exists(path):  # 'proposal' and 'bbox' may share one file
                    os.replace(path, target)
                final[key] = target
        return final

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """mmdet's ``compute_metrics`` with a clear error for zero images.

        Raises:
            ValueError: When no image was processed.
        """
        if not results:
            raise ValueError(f'{type(self).__name__}: no image was evaluated (empty test '
                             'dataset?); AP is undefined without images')
        return super().compute_metrics(results)
