"""ADE20K panoptic/instance preparation on a tiny raw release written here."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from mmseg_maskformer.datasets.converters.ade20k_panoptic import (
    ADE20K_PALETTE, ADE20K_SEM_SEG_CATEGORIES, INSTANCE100_TO_SEMANTIC, ade20k_instance_categories,
    ade20k_panoptic_categories, convert_split, instances_from_annotation,
    panoptic_from_annotations)
from mmseg_maskformer.datasets.panoptic import PanopticFormatDataset
from mmseg_maskformer.utils.panoptic import rgb2id

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLI = osp.join(REPO, 'tools', 'dataset_converters', 'ade20k_panoptic.py')
H, W = 6, 8


def image_with_overlap():
    """Wall/floor stuff, a void thing pixel, two persons (one over stuff) and a bed.

    Returns:
        ``semantic`` (H, W) and ``instance`` (H, W, 3) ``uint8`` arrays.
    """
    semantic = np.zeros((H, W), dtype=np.uint8)  # column 7 stays "other"
    semantic[:3, :7] = 1  # wall (category 0)
    semantic[3:, :7] = 4  # floor (category 3)
    semantic[5, 0] = 13  # person (thing) without instance -> void
    instance = np.zeros((H, W, 3), dtype=np.uint8)
    instance[1:4, 2:4] = (4, 1, 0)  # person (Instance100 4 -> 12), over wall and floor
    instance[4:6, 5:8] = (1, 2, 0)  # bed (Instance100 1 -> 7), partly over "other"
    instance[0, 0] = (4, 3, 0)  # a second person
    return semantic, instance


def image_without_instances():
    """Sky below one row of "other"; an all-zero instance PNG."""
    semantic = np.full((H, W), 3, dtype=np.uint8)  # sky (category 2)
    semantic[0] = 0
    return semantic, np.zeros((H, W, 3), dtype=np.uint8)


def image_with_covered_stuff():
    """Grass left, tree right, the tree entirely covered by a car."""
    semantic = np.full((H, W), 10, dtype=np.uint8)  # grass (category 9)
    semantic[:, 4:] = 5  # tree (category 4)
    instance = np.zeros((H, W, 3), dtype=np.uint8)
    instance[:, 4:] = (9, 5, 0)  # car (Instance100 9 -> 20)
    return semantic, instance


RAW = {
    'train': {'ADE_train_00000001': image_with_overlap,
              'ADE_train_00000002': image_without_instances},
    'val': {'ADE_val_00000001': image_with_covered_stuff},
}


@pytest.fixture
def raw_root(tmp_path) -> str:
    """The raw release layout with the images of ``RAW``."""
    for split, folder in (('train', 'training'), ('val', 'validation')):
        for sub in ('images', 'annotations', 'annotations_instance'):
            (tmp_path / sub / folder).mkdir(parents=True)
        for name, make in RAW[split].items():
            semantic, instance = make()
            Image.fromarray(np.full((H, W, 3), 128, np.uint8)).save(
                tmp_path / 'images' / folder / f'{name}.jpg')
            Image.fromarray(semantic).save(tmp_path / 'annotations' / folder / f'{name}.png')
            Image.fromarray(instance).save(
                tmp_path / 'annotations_instance' / folder / f'{name}.png')
    return str(tmp_path)


def test_categories_match_official_lists_and_configs():
    categories = ade20k_panoptic_categories()
    assert [cat['id'] for cat in categories] == list(range(150))
    assert categories[8]['name'] == 'window ' and categories[149]['name'] == 'flag'
    things = [cat['id'] for cat in categories if cat['isthing']]
    config = {}
    with open(osp.join(REPO, 'configs', '_base_', 'datasets', 'ade20k_panoptic.py')) as f:
        exec(f.read().split('train_pipeline')[0], config)
    assert things == config['thing_class_ids'] == sorted(INSTANCE100_TO_SEMANTIC)
    assert len(ADE20K_SEM_SEG_CATEGORIES) == len(ADE20K_PALETTE) == 150
    assert ADE20K_PALETTE[48] == (140, 140, 200) and categories[0]['color'] == [120, 120, 120]
    instance = ade20k_instance_categories()
    assert [cat['id'] for cat in instance] == list(INSTANCE100_TO_SEMANTIC)  # official ids
    assert [cat['name'] for cat in instance[:4]] == ['bed', 'windowpane', 'cabinet', 'person']


def test_panoptic_segments_follow_the_official_rules():
    id_map, segments = panoptic_from_annotations(*image_with_overlap())
    assert segments == [
        dict(id=1, category_id=0, area=21, bbox=[0, 0, 7, 3], iscrowd=0),  # wall
        dict(id=4, category_id=3, area=20, bbox=[0, 3, 7, 3], iscrowd=0),  # floor
        dict(id=13, category_id=12, area=6, bbox=[2, 1, 2, 3], iscrowd=0),  # person 1
        dict(id=8, category_id=7, area=6, bbox=[5, 4, 3, 2], iscrowd=0),  # bed
        dict(id=13 + 256, category_id=12, area=1, bbox=[0, 0, 1, 1], iscrowd=0),  # person 3
    ]
    assert id_map.dtype == np.int64 and id_map.shape == (H, W)
    assert (id_map[1:4, 2:4] == 13).all()  # the person paints over wall and floor
    assert id_map[0, 0] == 269 and (id_map[4:, 5:] == 8).all()
    assert id_map[5, 0] == 0 and (id_map[:4, 7] == 0).all()  # thing without instance, other
    assert (id_map == 1).sum() == 16 and (id_map == 4).sum() == 14


def test_consistent_stats_measure_the_png_and_drop_covered_stuff():
    _, official = panoptic_from_annotations(*image_with_covered_stuff())
    assert [(s['category_id'], s['area']) for s in official] == [(4, 24), (9, 24), (20, 24)]
    id_map, segments = panoptic_from_annotations(*image_with_covered_stuff(),
                                                 official_stats=False)
    assert [(s['category_id'], s['area']) for s in segments] == [(9, 24), (20, 24)]
    _, overlap = panoptic_from_annotations(*image_with_overlap(), official_stats=False)
    assert [s['area'] for s in overlap] == [16, 14, 6, 6, 1]
    assert panoptic_from_annotations(*image_without_instances())[1] == [
        dict(id=3, category_id=2, area=40, bbox=[0, 1, 8, 5], iscrowd=0)]


def test_invalid_annotations_are_rejected():
    semantic, instance = image_with_overlap()
    instance[1, 2, 0] = 5  # instance 1 now has two classes
    with pytest.raises(ValueError, match='instance 1'):
        panoptic_from_annotations(semantic, instance)
    with pytest.raises(ValueError, match='151'):
        panoptic_from_annotations(np.full((H, W), 151, np.uint8), np.zeros((H, W, 3), np.uint8))


def test_instance_annotations_use_the_official_semantic_ids_and_rle():
    annotations = instances_from_annotation(image_with_overlap()[1], 'x')
    # Instance100 class 4 (person) -> category 12, class 1 (bed) -> 7, as the official file
    assert [(a['category_id'], a['area'], a['bbox']) for a in annotations] == [
        (12, 6, [2, 1, 2, 3]), (7, 6, [5, 4, 3, 2]), (12, 1, [0, 0, 1, 1])]
    assert isinstance(annotations[0]['segmentation']['counts'], str)


def test_convert_split_is_read_by_the_dataset_and_pycocotools(raw_root):
    counts = convert_split(raw_root, 'train')
    assert counts == dict(images=2, segments=6, stuff=3, things=3)
    dataset = PanopticFormatDataset(
        data_root=raw_root, ann_file='ade20k_panoptic_train.json', test_mode=True,
        data_prefix=dict(img='images/training/', seg='ade20k_panoptic_train/'))
    assert len(dataset.metainfo['classes']) == 150
    assert len(dataset.metainfo['thing_classes']) == 100
    assert [info['img_id'] for info in dataset] == list(RAW['train'])
    info = dataset[0]
    id_map = rgb2id(np.asarray(Image.open(info['seg_map_path'])))
    assert np.array_equal(id_map, panoptic_from_annotations(*image_with_overlap())[0])
    coco = COCO(osp.join(raw_root, 'ade20k_instance_train.json'))
    anns = coco.loadAnns(coco.getAnnIds(imgIds=['ADE_train_00000001']))
    things = [s for s in info['segments_info'] if s['isthing']]
    assert [a['id'] for a in anns] == [1, 2, 3]
    for ann, seg in zip(anns, things):
        assert np.array_equal(coco.annToMask(ann).astype(bool), id_map == seg['id'])
        assert ann['category_id'] == seg['category_id']  # one id space, as official
    assert coco.getAnnIds(imgIds=['ADE_train_00000002']) == []


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """Run the converter command line in a fresh interpreter."""
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, CLI, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_end_to_end_idempotent_and_overwrite(raw_root):
    first = run_cli(raw_root, '--splits', 'train', 'val')
    assert first.returncode == 0, first.stderr
    assert 'train: 2 images, 6 segments (3 stuff, 3 things)' in first.stdout
    assert 'val: 1 images, 3 segments (2 stuff, 1 things)' in first.stdout
    for name in ('ade20k_panoptic_train.json', 'ade20k_panoptic_val.json',
                 'ade20k_instance_val.json', 'ade20k_panoptic_val/ADE_val_00000001.png'):
        assert osp.isfile(osp.join(raw_root, name))
    json_path = osp.join(raw_root, 'ade20k_panoptic_val.json')
    mtime = os.stat(json_path).st_mtime_ns
    second = run_cli(raw_root, '--splits', 'val')
    assert second.returncode == 0 and 'val: outputs complete, skipped' in second.stdout
    assert os.stat(json_path).st_mtime_ns == mtime
    os.remove(osp.join(raw_root, 'ade20k_panoptic_val', 'ADE_val_00000001.png'))
    third = run_cli(raw_root, '--splits', 'val', '--consistent-stats')
    assert 'val: 1 images, 2 segments (1 stuff, 1 things)' in third.stdout
    fourth = run_cli(raw_root, '--splits', 'val', '--overwrite')
    assert 'val: 1 images, 3 segments' in fourth.stdout
    with open(json_path) as f:
        assert len(json.load(f)['annotations'][0]['segments_info']) == 3


def test_cli_names_missing_raw_folders(raw_root):
    os.rename(osp.join(raw_root, 'annotations_instance'), osp.join(raw_root, 'moved'))
    result = run_cli(raw_root, '--splits', 'val')
    assert result.returncode == 1
    assert osp.join(raw_root, 'annotations_instance', 'validation') in result.stderr
    assert 'annotations_instance.tar' in result.stderr
    assert not osp.exists(osp.join(raw_root, 'ade20k_panoptic_val.json'))
