"""Preparation tools for COCO-Stuff-10K, Cityscapes and COCO panoptic -> semantic.

Each converter runs on a tiny copy of its raw release and is checked pixel by
pixel against a brute-force mapping; the output is then read through the
dataset and pipeline of our config, as a user's training would read it.
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image
from scipy.io import savemat

from mmseg_maskformer.datasets.converters.semantic_labels import (
    CITYSCAPES_LABEL_TO_TRAIN_ID, COCO_STUFF_USED_IDS, semantic_from_panoptic)
from mmseg_maskformer.registry import DATASETS
from mmseg_maskformer.utils.panoptic import id2rgb, rgb2id

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / 'tests/data/coco_panoptic_sample'


def run_tool(name, *args):
    proc = subprocess.run([sys.executable, str(ROOT / 'tools/dataset_converters' / name),
                           *map(str, args)], capture_output=True, text=True, cwd=ROOT)
    return proc


def image(path, height, width, seed):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path)


def first_sample(config, data_root, split='train_dataloader'):
    cfg = Config.fromfile(str(ROOT / 'configs/_base_/datasets' / config))
    dataset_cfg = cfg[split]['dataset']
    dataset_cfg['data_root'] = str(data_root)
    dataset = DATASETS.build(dataset_cfg)
    return dataset, dataset[0]


def test_coco_stuff10k(tmp_path):
    rng = np.random.default_rng(0)
    raw = tmp_path / 'raw'
    names = {'train': ['COCO_train2014_000000000077', 'COCO_train2014_000000000078'],
             'test': ['COCO_train2014_000000000079']}
    values = np.array((0, 12) + COCO_STUFF_USED_IDS)  # 12 is not a COCO-Stuff id
    labels = {}
    for split, split_names in names.items():
        (raw / 'imageLists').mkdir(parents=True, exist_ok=True)
        (raw / 'imageLists' / f'{split}.txt').write_text('\n'.join(split_names) + '\n')
        for i, name in enumerate(split_names):
            image(raw / 'images' / f'{name}.jpg', 40, 48, i)
            labels[name] = rng.choice(values, size=(40, 48)).astype(np.uint8)
            (raw / 'annotations').mkdir(exist_ok=True)
            savemat(raw / 'annotations' / f'{name}.mat', {'S': labels[name]})
    proc = run_tool('coco_stuff10k.py', raw, '--out-dir', tmp_path / 'out')
    assert proc.returncode == 0, proc.stderr
    assert '2 train and 1 test images converted' in proc.stdout
    unknown = sum(int((lab == 12).sum()) for lab in labels.values())
    assert f'warning: {unknown} pixels' in proc.stdout
    for split, split_names in names.items():
        for name in split_names:
            out = np.asarray(Image.open(
                tmp_path / 'out/annotations' / f'{split}2014' / f'{name}_labelTrainIds.png'))
            expected = np.zeros_like(labels[name])
            for (r, c), value in np.ndenumerate(labels[name]):
                if value in COCO_STUFF_USED_IDS:
                    expected[r, c] = COCO_STUFF_USED_IDS.index(value) + 1
            np.testing.assert_array_equal(out, expected)
            assert (tmp_path / 'out/images' / f'{split}2014' / f'{name}.jpg').is_file()
    dataset, sample = first_sample('coco_stuff10k.py', tmp_path / 'out')
    assert len(dataset) == 2 and dataset.metainfo['classes'][0] == 'person'
    gt = sample['data_samples'].gt_sem_seg.data
    assert set(gt.unique().tolist()) <= set(range(171)) | {255}


def test_coco_stuff10k_missing_list_is_named(tmp_path):
    proc = run_tool('coco_stuff10k.py', tmp_path)
    assert proc.returncode == 1
    assert 'imageLists/train.txt' in proc.stderr and 'does not exist' in proc.stderr


def test_cityscapes(tmp_path):
    rng = np.random.default_rng(1)
    stem = 'aachen_000000_000019'
    for split in ('train', 'val'):
        image(tmp_path / f'leftImg8bit/{split}/aachen/{stem}_leftImg8bit.png', 64, 128, 2)
        ids = rng.integers(0, 34, (64, 128)).astype(np.uint8)
        ids[0, 0] = 40  # not a Cityscapes label id
        path = tmp_path / f'gtFine/{split}/aachen/{stem}_gtFine_labelIds.png'
        path.parent.mkdir(parents=True)
        Image.fromarray(ids).save(path)
    proc = run_tool('cityscapes.py', tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert 'train: 1 label maps, val: 1 label maps' in proc.stdout
    assert 'warning: 2 pixels' in proc.stdout
    for split in ('train', 'val'):
        ids = np.asarray(Image.open(tmp_path / f'gtFine/{split}/aachen/{stem}_gtFine_labelIds.png'))
        out = np.asarray(Image.open(
            tmp_path / f'gtFine/{split}/aachen/{stem}_gtFine_labelTrainIds.png'))
        expected = np.vectorize(lambda v: CITYSCAPES_LABEL_TO_TRAIN_ID.get(int(v), 255))(ids)
        np.testing.assert_array_equal(out, expected)
    _, sample = first_sample('cityscapes.py', tmp_path)
    assert set(sample['data_samples'].gt_sem_seg.data.unique().tolist()) <= set(range(19)) | {255}


def test_cityscapes_missing_split_is_named(tmp_path):
    proc = run_tool('cityscapes.py', tmp_path, '--splits', 'val')
    assert proc.returncode == 1 and 'gtFine/val does not exist' in proc.stderr


def test_coco_semantic_from_panoptic_matches_brute_force(tmp_path):
    out = tmp_path / 'panoptic_semseg_val2017'
    proc = run_tool('coco_semantic_from_panoptic.py', SAMPLE / 'panoptic_examples.json',
                    SAMPLE / 'panoptic', out)
    assert proc.returncode == 0, proc.stderr
    assert '2 semantic maps (133 classes, 255 = void)' in proc.stdout
    data = json.loads((SAMPLE / 'panoptic_examples.json').read_text())
    label_of = {cat['id']: i for i, cat in enumerate(data['categories'])}
    crowd_seen = 0
    for ann in data['annotations']:
        ids = rgb2id(np.asarray(Image.open(SAMPLE / 'panoptic' / ann['file_name']).convert('RGB')))
        semantic = np.asarray(Image.open(out / ann['file_name']))
        segments = {seg['id']: seg for seg in ann['segments_info']}
        for segment_id in np.unique(ids):
            pixels = semantic[ids == segment_id]
            if segment_id == 0:
                assert (pixels == 255).all()
                continue
            segment = segments[int(segment_id)]
            assert (pixels == label_of[segment['category_id']]).all()
            crowd_seen += segment['iscrowd']
    assert crowd_seen == 3  # crowd segments keep their class


def test_panoptic_png_with_undescribed_id_is_named(tmp_path):
    ids = np.zeros((4, 5), dtype=np.int64)
    ids[:2] = 7
    ids[2:] = 9
    with pytest.raises(ValueError, match=r'x\.png: segment ids \[9\] in the PNG have no entry'):
        semantic_from_panoptic(id2rgb(ids), [dict(id=7, category_id=1)], {1: 0}, where='x.png')
    with pytest.raises(ValueError, match='category_id 5'):
        semantic_from_panoptic(id2rgb(ids), [dict(id=7, category_id=5)], {1: 0}, where='x.png')


def test_mapillary_layout_loads_and_ignores_unlabeled(tmp_path):
    root = tmp_path / 'mapillary'
    labels = np.random.default_rng(4).integers(0, 66, (48, 64)).astype(np.uint8)
    for split in ('training', 'validation'):
        image(root / f'{split}/images/img0.jpg', 48, 64, 3)
        (root / f'{split}/v1.2/labels').mkdir(parents=True)
        Image.fromarray(labels).save(root / f'{split}/v1.2/labels/img0.png')
    dataset, sample = first_sample('mapillary_v1_65.py', root, split='val_dataloader')
    assert len(dataset.metainfo['classes']) == 65
    expected = np.where(labels == 65, 255, labels)  # 'Unlabeled' (65) is ignored
    np.testing.assert_array_equal(sample['data_samples'].gt_sem_seg.data[0].numpy(), expected)
