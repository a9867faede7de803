"""COCO-format instance datasets whose category ids are checked at load time.

mmdet's ``CocoDataset`` silently drops an annotation whose ``category_id`` is
not one of the dataset's classes, and silently shifts labels when a class name
of ``metainfo`` is missing from the file's ``categories``: both give wrong
metrics without an error. :class:`CheckedCocoDataset` behaves exactly like it
on good files and fails on bad ones, naming the file, the image, the
annotation and the id.
"""
from typing import Union

from mmdet.datasets import CocoDataset

from mmseg_maskformer.registry import DATASETS
from .coco_format import check_annotation_categories


@DATASETS.register_module()
class CheckedCocoDataset(CocoDataset):
    """mmdet's ``CocoDataset`` with category checks (same arguments).

    Raises:
        ValueError: When loading, if a class of ``metainfo['classes']`` has no
            category in the annotation file, or an annotation has a
            ``category_id`` that is not among the file's categories.
    """

    def parse_data_info(self, raw_data_info: dict) -> Union[dict, list]:
        """Check the file's categories (first call), then parse as mmdet does."""
        if not getattr(self, '_checked', False):
            self._check_categories()
        return super().parse_data_info(raw_data_info)

    def _check_categories(self) -> None:
        """Once per load, while mmdet's ``self.coco`` exists: ids, then class names."""
        check_annotation_categories(self.coco.dataset, self.ann_file)
        names = {cat['name'] for cat in self.coco.cats.values()}
        missing = [name for name in self.metainfo['classes'] if name not in names]
        if missing:
            raise ValueError(
                f'{self.ann_file}: classes {missing[:10]} of the dataset metainfo have no '
                'category of that name in the file (labels would shift); fix metainfo '
                'classes or the file')
        self._checked = True
