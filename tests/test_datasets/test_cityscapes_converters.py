"""Cityscapes panoptic/instance preparation on a tiny raw ``gtFine`` release written here.

The expected outputs are transcribed pixel by pixel from the rules of
cityscapesScripts' ``createPanopticImgs.py`` and mmdet's Cityscapes converter,
with their own label tables below, independent of the converter's.
"""
import importlib.util
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pycocotools.mask as mask_util
import pytest
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mmseg_maskformer.datasets.converters.cityscapes_panoptic import (
    CITYSCAPES_LABELS, cityscapes_instance_categories, cityscapes_panoptic_categories,
    convert_instance_split, convert_panoptic_split, instances_from_instance_ids,
    panoptic_from_instance_ids)
from mmseg_maskformer.datasets.converters.semantic_labels import CITYSCAPES_LABEL_TO_TRAIN_ID

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
H, W = 64, 128
#: Label id -> (name, train id) of the 19 evaluated labels (cityscapesScripts labels.py).
EVALUATED = {
    7: ('road', 0), 8: ('sidewalk', 1), 11: ('building', 2), 12: ('wall', 3), 13: ('fence', 4),
    17: ('pole', 5), 19: ('traffic light', 6), 20: ('traffic sign', 7), 21: ('vegetation', 8),
    22: ('terrain', 9), 23: ('sky', 10), 24: ('person', 11), 25: ('rider', 12), 26: ('car', 13),
    27: ('truck', 14), 28: ('bus', 15), 31: ('train', 16), 32: ('motorcycle', 17),
    33: ('bicycle', 18)
}
#: Label ids with instances (hasInstances), evaluated or not (caravan 29, trailer 30).
WITH_INSTANCES = {24, 25, 26, 27, 28, 29, 30, 31, 32, 33}


def street_scene() -> np.ndarray:
    """Stuff, ignored stuff, instances, crowd groups and ignored things (H, W)."""
    raw = np.full((H, W), 7, np.int64)  # road
    raw[:16] = 23  # sky
    raw[16:32] = 11  # building
    raw[:, :4] = 0  # unlabeled -> void
    raw[56:] = 1  # ego vehicle -> void
    raw[40:48, 100:120] = 9  # parking -> void
    raw[20:50, 10:20] = 24001  # person 1
    raw[25:50, 22:30] = 24002  # person 2
    raw[30:50, 40:70] = 26  # car group -> crowd
    raw[35:45, 72:90] = 26001  # car
    raw[36:44, 92:98] = 29001  # caravan instance -> void (ignoreInEval)
    raw[10:14, 60:64] = 29  # caravan group -> void
    raw[50:55, 5:15] = 33000  # bicycle with instance number 0
    raw[0:30, 120:122] = 18  # polegroup -> void
    return raw


def stuff_and_bus() -> np.ndarray:
    """Sidewalk, vegetation, terrain, a motorcycle and a bus group (H, W)."""
    raw = np.full((H, W), 8, np.int64)
    raw[:20] = 21
    raw[:, 100:] = 22
    raw[30:40, 30:50] = 32001
    raw[10:30, 60:90] = 28
    return raw


def one_person() -> np.ndarray:
    """Road and one person: the first annotation of the val split is not a crowd."""
    raw = np.full((H, W), 7, np.int64)
    raw[10:40, 50:60] = 24001
    return raw


def unlabeled() -> np.ndarray:
    """An image without any evaluated pixel."""
    return np.zeros((H, W), np.int64)


RAW = {
    'val': {('frankfurt', 'frankfurt_000000_000001'): one_person,
            ('frankfurt', 'frankfurt_000000_000294'): street_scene,
            ('lindau', 'lindau_000001_000019'): stuff_and_bus},
    'train': {('aachen', 'aachen_000000_000019'): stuff_and_bus,
              ('bochum', 'bochum_000000_000313'): unlabeled},
}


@pytest.fixture
def raw_root(tmp_path) -> str:
    """``gtFine/{split}/<city>/*_gtFine_instanceIds.png`` (16-bit) and the images."""
    for split, images in RAW.items():
        for (city, image_id), make in images.items():
            for folder in ('gtFine', 'leftImg8bit'):
                (tmp_path / folder / split / city).mkdir(parents=True, exist_ok=True)
            Image.fromarray(make().astype(np.uint16)).save(
                tmp_path / 'gtFine' / split / city / f'{image_id}_gtFine_instanceIds.png')
            Image.fromarray(np.full((H, W, 3), 90, np.uint8)).save(
                tmp_path / 'leftImg8bit' / split / city / f'{image_id}_leftImg8bit.png')
    return str(tmp_path)


def expected_panoptic(raw: np.ndarray, use_train_id: bool):
    """The official rules, pixel by pixel: (segment ids (H, W), segments by id)."""
    ids = np.zeros(raw.shape, np.int64)
    segments = {}
    for y in range(raw.shape[0]):
        for x in range(raw.shape[1]):
            value = int(raw[y, x])
            label_id = value if value < 1000 else value // 1000
            if label_id not in EVALUATED:
                continue
            ids[y, x] = value
            seg = segments.setdefault(value, dict(
                id=value, category_id=EVALUATED[label_id][1] if use_train_id else label_id,
                iscrowd=int(value < 1000 and label_id in WITH_INSTANCES), area=0,
                box=[x, y, x, y]))
            seg['area'] += 1
            box = seg['box']
            seg['box'] = [min(box[0], x), min(box[1], y), max(box[2], x), max(box[3], y)]
    for seg in segments.values():
        x0, y0, x1, y1 = seg.pop('box')
        seg['bbox'] = [x0, y0, x1 - x0 + 1, y1 - y0 + 1]
    return ids, segments


def decode_png(path: str) -> np.ndarray:
    """Segment ids ``R + 256 G + 256^2 B`` of an RGB PNG."""
    rgb = np.asarray(Image.open(path)).astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def test_label_table_matches_the_train_id_table():
    """The converter's 35 labels agree with the semantic converter's train ids."""
    evaluated = {label.id: label.train_id for label in CITYSCAPES_LABELS
                 if not label.ignore_in_eval}
    assert evaluated == CITYSCAPES_LABEL_TO_TRAIN_ID
    assert evaluated == {label_id: train_id for label_id, (_, train_id) in EVALUATED.items()}
    assert {label.id for label in CITYSCAPES_LABELS if label.has_instances} == WITH_INSTANCES


@pytest.mark.parametrize('use_train_id', [False, True])
def test_categories(use_train_id):
    """19 categories in label order, 8 things; ids are label ids or train ids."""
    categories = cityscapes_panoptic_categories(use_train_id)
    assert [cat['name'] for cat in categories] == [name for name, _ in EVALUATED.values()]
    expected_ids = [train_id if use_train_id else label_id
                    for label_id, (_, train_id) in EVALUATED.items()]
    assert [cat['id'] for cat in categories] == expected_ids
    things = [cat['name'] for cat in categories if cat['isthing']]
    assert things == ['person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle']
    assert categories[0]['color'] == [128, 64, 128] and categories[0]['supercategory'] == 'flat'
    assert [cat['id'] for cat in cityscapes_instance_categories()] == [
        24, 25, 26, 27, 28, 31, 32, 33]


@pytest.mark.parametrize('make', [street_scene, stuff_and_bus, one_person, unlabeled])
def test_panoptic_of_one_map_matches_the_official_rules(make):
    raw = make()
    ids, segments = panoptic_from_instance_ids(raw)
    expected_ids, expected = expected_panoptic(raw, use_train_id=False)
    np.testing.assert_array_equal(ids, expected_ids)
    assert segments == [expected[key] for key in sorted(expected)]


def test_unknown_label_id_is_an_error():
    raw = street_scene()
    raw[0, 0] = 40
    with pytest.raises(ValueError, match='label id 40'):
        panoptic_from_instance_ids(raw)
    with pytest.raises(ValueError, match='label id 40'):
        instances_from_instance_ids(raw)


@pytest.mark.parametrize('use_train_id', [False, True])
def test_panoptic_split_files(raw_root, use_train_id):
    """JSON entries and every PNG pixel of both splits, in the script's layout."""
    suffix = '_trainId' if use_train_id else ''
    for split, images in RAW.items():
        counts = convert_panoptic_split(raw_root, split, use_train_id=use_train_id)
        json_path = osp.join(raw_root, 'gtFine', f'cityscapes_panoptic_{split}{suffix}.json')
        with open(json_path) as file:
            text = file.read()
        panoptic = json.loads(text)
        assert text == json.dumps(panoptic, sort_keys=True, indent=4)  # the script's layout
        assert panoptic['categories'] == cityscapes_panoptic_categories(use_train_id)
        ordered = sorted(images)  # sorted by path: city, then image id
        assert [image['id'] for image in panoptic['images']] == [i for _, i in ordered]
        assert counts['images'] == len(ordered)
        for (city, image_id), image, ann in zip(ordered, panoptic['images'],
                                                panoptic['annotations']):
            assert image == dict(id=image_id, width=W, height=H,
                                 file_name=f'{image_id}_gtFine_leftImg8bit.png')
            assert ann['image_id'] == image_id
            assert ann['file_name'] == f'{image_id}_gtFine_panoptic.png'
            expected_ids, expected = expected_panoptic(images[(city, image_id)](), use_train_id)
            png = osp.join(raw_root, 'gtFine', f'cityscapes_panoptic_{split}{suffix}',
                           ann['file_name'])
            np.testing.assert_array_equal(decode_png(png), expected_ids)
            assert ann['segments_info'] == [expected[key] for key in sorted(expected)]


def expected_instances(raw: np.ndarray):
    """mmdet's rules: one annotation per value of an evaluated label with instances."""
    found = {}
    for value in np.unique(raw).tolist():
        label_id = value if value < 1000 else value // 1000
        if label_id in WITH_INSTANCES and label_id in EVALUATED:
            found[value] = (label_id, int(value < 1000), raw == value)
    return found


def test_instance_split_file(raw_root):
    """COCO instance JSON: images, categories, masks, crowd flags, boxes, areas, ids."""
    counts = convert_instance_split(raw_root, 'val')
    with open(osp.join(raw_root, 'annotations', 'instancesonly_filtered_gtFine_val.json')) as f:
        coco = json.load(f)
    ordered = sorted(RAW['val'])
    assert coco['images'] == [
        dict(id=k, file_name=f'{city}/{image_id}_leftImg8bit.png', height=H, width=W,
             segm_file=f'{city}/{image_id}_gtFine_labelIds.png')
        for k, (city, image_id) in enumerate(ordered)]
    assert coco['categories'] == [dict(id=i, name=EVALUATED[i][0])
                                  for i in (24, 25, 26, 27, 28, 31, 32, 33)]
    assert [ann['id'] for ann in coco['annotations']] == list(
        range(1, len(coco['annotations']) + 1))
    assert counts['instances'] == len(coco['annotations'])
    for k, key in enumerate(ordered):
        expected = expected_instances(RAW['val'][key]())
        anns = [ann for ann in coco['annotations'] if ann['image_id'] == k]
        assert len(anns) == len(expected)
        for ann, (label_id, iscrowd, mask) in zip(anns, expected.values()):
            decoded = mask_util.decode(ann['segmentation']).astype(bool)
            np.testing.assert_array_equal(decoded, mask)
            ys, xs = np.nonzero(mask)
            assert ann['bbox'] == [xs.min(), ys.min(), xs.max() - xs.min() + 1,
                                   ys.max() - ys.min() + 1]
            assert (ann['category_id'], ann['iscrowd'], ann['area']) == (
                label_id, iscrowd, int(mask.sum()))
    crowd = {ann['category_id'] for ann in coco['annotations'] if ann['iscrowd']}
    assert crowd == {26, 28} and counts['crowd'] == 2


def test_instance_file_scores_perfect_predictions_ap_100(raw_root):
    """Ground truth as predictions gives AP 1 (ids from 1: no match is lost to id 0)."""
    convert_instance_split(raw_root, 'val')
    gt = COCO(osp.join(raw_root, 'annotations', 'instancesonly_filtered_gtFine_val.json'))
    results = [dict(image_id=ann['image_id'], category_id=ann['category_id'],
                    segmentation=ann['segmentation'], score=1.0)
               for ann in gt.dataset['annotations'] if not ann['iscrowd']]
    evaluator = COCOeval(gt, gt.loadRes(results), 'segm')
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    assert evaluator.stats[0] == pytest.approx(1.0)


def load_tool(name: str):
    """Import ``tools/dataset_converters/{name}.py`` as a module."""
    path = osp.join(REPO, 'tools', 'dataset_converters', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'cityscapes_tool_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_panoptic_tool(raw_root, tmp_path, capsys):
    """Writes both splits, skips complete ones, honours --out-dir, fails on a missing split."""
    tool = load_tool('cityscapes_panoptic')
    assert tool.main([raw_root]) == 0
    for split in ('train', 'val'):
        assert osp.isfile(osp.join(raw_root, 'gtFine', f'cityscapes_panoptic_{split}.json'))
    assert tool.main([raw_root, '--splits', 'val']) == 0
    assert 'skipped' in capsys.readouterr().out
    out = str(tmp_path / 'out')
    assert tool.main([raw_root, '--splits', 'val', '--use-train-id', '--out-dir', out]) == 0
    with open(osp.join(out, 'cityscapes_panoptic_val_trainId.json')) as file:
        assert [cat['id'] for cat in json.load(file)['categories']] == list(range(19))
    assert tool.main([raw_root, '--splits', 'test']) == 1
    assert 'gtFine' in capsys.readouterr().err


def test_instance_tool(raw_root, capsys):
    tool = load_tool('cityscapes_instance')
    assert tool.main([raw_root, '--nproc', '1']) == 0
    path = osp.join(raw_root, 'annotations', 'instancesonly_filtered_gtFine_train.json')
    with open(path) as file:
        assert len(json.load(file)['images']) == 2
    assert tool.main([raw_root, '--splits', 'test']) == 1
    assert 'missing folder' in capsys.readouterr().err


def test_tools_run_as_scripts(raw_root):
    """``python tools/dataset_converters/<tool>.py`` works from any folder."""
    for name, output in (('cityscapes_panoptic', 'gtFine/cityscapes_panoptic_val.json'),
                         ('cityscapes_instance',
                          'annotations/instancesonly_filtered_gtFine_val.json')):
        script = osp.join(REPO, 'tools', 'dataset_converters', f'{name}.py')
        proc = subprocess.run([sys.executable, script, raw_root, '--splits', 'val'],
                              cwd=raw_root, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert osp.isfile(osp.join(raw_root, output))
