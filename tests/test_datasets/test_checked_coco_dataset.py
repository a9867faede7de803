"""CheckedCocoDataset: mmdet's CocoDataset on good files, a named error on bad category ids."""
import json
from pathlib import Path

import pytest
from mmdet.datasets import CocoDataset
from mmengine.config import Config

from mmseg_maskformer.datasets import generate_synthetic_coco
from mmseg_maskformer.registry import DATASETS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('coco')
    generate_synthetic_coco(str(root), num_train=2, num_val=3, img_size=48, seed=5)
    return root


def val_dataset_cfg(root: Path, ann_file: str = None) -> dict:
    cfg = Config.fromfile(str(ROOT / 'configs/_base_/datasets/coco_instance_lsj.py'))
    dataset = cfg.val_dataloader.dataset.to_dict()
    dataset.update(data_root=str(root), pipeline=[])
    if ann_file is not None:
        dataset['ann_file'] = ann_file
    return dataset


def test_equals_mmdet_on_good_files(coco_root):
    cfg = val_dataset_cfg(coco_root)
    assert cfg['type'] == 'CheckedCocoDataset'
    ours = DATASETS.build(cfg)
    theirs = CocoDataset(**{k: v for k, v in cfg.items() if k != 'type'})
    assert len(ours) == len(theirs) == 3
    for i in range(3):
        assert ours.get_data_info(i) == theirs.get_data_info(i)
    assert sum(len(ours.get_data_info(i)['instances']) for i in range(3)) > 0


def edited(root: Path, tmp_path: Path, edit) -> str:
    data = json.loads((root / 'annotations/instances_val2017.json').read_text())
    edit(data)
    path = tmp_path / 'instances_bad.json'
    path.write_text(json.dumps(data))
    return str(path)


def test_unknown_category_id_is_named(coco_root, tmp_path):
    def edit(data):
        data['annotations'][0]['category_id'] = 999
    ann = edited(coco_root, tmp_path, edit)
    dataset = DATASETS.build(dict(val_dataset_cfg(coco_root, ann), lazy_init=True))
    with pytest.raises(ValueError, match=r'instances_bad\.json: annotation \d+ of image \d+ '
                       r'\(.*\.jpg\) has category_id 999'):
        dataset.full_init()
    # mmdet alone drops that annotation without a word
    theirs = CocoDataset(**{k: v for k, v in val_dataset_cfg(coco_root, ann).items()
                            if k != 'type'})
    assert len(theirs) == 3


def test_class_missing_from_the_file_is_named(coco_root, tmp_path):
    def edit(data):
        data['categories'][0]['name'] = 'renamed'
    ann = edited(coco_root, tmp_path, edit)
    with pytest.raises(ValueError, match=r"classes \['person'\] of the dataset metainfo have "
                       'no category of that name'):
        DATASETS.build(val_dataset_cfg(coco_root, ann))
