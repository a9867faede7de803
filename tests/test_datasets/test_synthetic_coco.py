"""Tests of the synthetic COCO-layout panoptic dataset generator and its command line."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from mmseg_maskformer.datasets.coco_categories import (COCO_PANOPTIC_CATEGORIES,
                                                       coco_category_by_name,
                                                       coco_instance_categories,
                                                       coco_stuff_categories,
                                                       coco_thing_categories)
from mmseg_maskformer.datasets.coco_format import (mask_to_polygons, mask_to_uncompressed_rle,
                                                   segments_info_from_id_map)
from mmseg_maskformer.datasets.synthetic_coco import (COCO_STUFF_SUBSET, COCO_THING_SUBSET,
                                                      SYNTHETIC_COCO_CATEGORIES,
                                                      generate_synthetic_coco,
                                                      render_coco_sample)
from mmseg_maskformer.utils.panoptic import rgb2id

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / 'tools' / 'dataset_converters' / 'synthetic_coco.py'
CATEGORIES_JSON = REPO / 'tests' / 'data' / 'coco_panoptic_sample' / 'panoptic_coco_categories.json'
PARAMS = dict(num_train=4, num_val=3, img_size=64, seed=5)
SPLITS = (('train2017', 0, 4), ('val2017', 1000000, 3))


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory) -> str:
    """A small synthetic COCO-layout dataset shared by the module."""
    root = str(tmp_path_factory.mktemp('synthetic_coco'))
    generate_synthetic_coco(root, **PARAMS)
    return root


def _listing(root: str) -> dict:
    out = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            out[osp.relpath(osp.join(dirpath, name), root)] = Path(dirpath, name).read_bytes()
    return out


def _load(root: str, name: str) -> dict:
    return json.loads(Path(root, 'annotations', name).read_text())


def _read_ids(path: str) -> np.ndarray:
    png = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    assert png is not None and png.dtype == np.uint8 and png.ndim == 3
    return rgb2id(png[..., ::-1])


# ---------------------------------------------------------------------------
# Categories.
# ---------------------------------------------------------------------------
def test_categories_are_the_official_ones():
    assert list(COCO_PANOPTIC_CATEGORIES) == json.loads(CATEGORIES_JSON.read_text())
    things, stuff = coco_thing_categories(), coco_stuff_categories()
    assert len(things) == 80 and len(stuff) == 53
    assert all(cat['isthing'] == 1 for cat in things) and all(not c['isthing'] for c in stuff)
    assert max(cat['id'] for cat in things) < min(cat['id'] for cat in stuff)
    assert coco_instance_categories()[0] == dict(supercategory='person', id=1, name='person')
    ball = coco_category_by_name('sports ball')
    assert ball['id'] == 37 and ball['isthing'] == 1
    ball['color'][0] = -1  # copies do not alias the constant
    assert coco_category_by_name('sports ball')['color'][0] == 78
    with pytest.raises(KeyError):
        coco_category_by_name('unicorn')


def test_subset_uses_real_coco_ids_and_names():
    for cat_id, name in SYNTHETIC_COCO_CATEGORIES.items():
        cat = coco_category_by_name(name)
        assert cat['id'] == cat_id
        assert cat['isthing'] == (cat_id in COCO_THING_SUBSET)
    assert set(COCO_STUFF_SUBSET) | set(COCO_THING_SUBSET) == set(SYNTHETIC_COCO_CATEGORIES)
    assert len(COCO_STUFF_SUBSET) == 3 and len(COCO_THING_SUBSET) == 5


# ---------------------------------------------------------------------------
# Files on disk.
# ---------------------------------------------------------------------------
def test_exact_coco_layout(coco_root):
    expected = ['meta.json']
    for split, offset, count in SPLITS:
        expected += [f'annotations/panoptic_{split}.json', f'annotations/instances_{split}.json']
        for i in range(offset + 1, offset + count + 1):
            expected += [f'{split}/{i:012d}.jpg', f'annotations/panoptic_{split}/{i:012d}.png']
    assert sorted(_listing(coco_root)) == sorted(expected)
    img = cv2.imread(osp.join(coco_root, 'train2017', '000000000001.jpg'), cv2.IMREAD_UNCHANGED)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8


@pytest.mark.parametrize('split,offset,count', SPLITS)
def test_panoptic_json_schema(coco_root, split, offset, count):
    data = _load(coco_root, f'panoptic_{split}.json')
    assert set(data) == {'info', 'licenses', 'images', 'annotations', 'categories'}
    assert data['categories'] == list(COCO_PANOPTIC_CATEGORIES)
    ids = [img['id'] for img in data['images']]
    assert ids == list(range(offset + 1, offset + count + 1))
    for img, ann in zip(data['images'], data['annotations']):
        assert img['file_name'] == f'{img["id"]:012d}.jpg'
        assert (img['height'], img['width']) == (64, 64)
        assert ann['image_id'] == img['id'] and ann['file_name'] == f'{img["id"]:012d}.png'
        assert ann['segments_info'], 'every image has a segment'
        for seg in ann['segments_info']:
            assert set(seg) == {'id', 'category_id', 'iscrowd', 'bbox', 'area'}
            assert seg['category_id'] in SYNTHETIC_COCO_CATEGORIES
            assert 1 <= seg['id'] < 256**3
            if seg['category_id'] in COCO_STUFF_SUBSET:
                assert seg['iscrowd'] == 0
        stuff = [s['category_id'] for s in ann['segments_info'] if s['category_id'] > 90]
        assert len(stuff) == len(set(stuff)), 'one segment per stuff class'


@pytest.mark.parametrize('split', ['train2017', 'val2017'])
def test_png_matches_segments_info(coco_root, split):
    data = _load(coco_root, f'panoptic_{split}.json')
    for ann in data['annotations']:
        ids = _read_ids(osp.join(coco_root, 'annotations', f'panoptic_{split}', ann['file_name']))
        infos = {seg['id']: seg for seg in ann['segments_info']}
        assert len(infos) == len(ann['segments_info'])
        assert set(np.unique(ids).tolist()) - {0} == set(infos)
        for seg_id, seg in infos.items():
            ys, xs = np.nonzero(ids == seg_id)
            assert seg['area'] == len(xs)
            assert seg['bbox'] == [xs.min(), ys.min(), xs.max() - xs.min() + 1,
                                   ys.max() - ys.min() + 1]


@pytest.mark.parametrize('split', ['train2017', 'val2017'])
def test_instances_match_panoptic(coco_root, split):
    panoptic = _load(coco_root, f'panoptic_{split}.json')
    coco = COCO(osp.join(coco_root, 'annotations', f'instances_{split}.json'))
    assert list(coco.cats.values()) == coco_instance_categories()
    assert coco.dataset['images'] == panoptic['images']
    ann_ids = [ann['id'] for ann in coco.dataset['annotations']]
    assert ann_ids == list(range(1, len(ann_ids) + 1))
    for pan in panoptic['annotations']:
        ids = _read_ids(osp.join(coco_root, 'annotations', f'panoptic_{split}', pan['file_name']))
        things = [seg for seg in pan['segments_info'] if seg['category_id'] in COCO_THING_SUBSET]
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[pan['image_id']], iscrowd=None))
        assert len(anns) == len(things)
        for ann, seg in zip(anns, things):
            for key in ('category_id', 'iscrowd', 'area', 'bbox'):
                assert ann[key] == seg[key], key
            if seg['iscrowd']:
                assert set(ann['segmentation']) == {'counts', 'size'}
                assert isinstance(ann['segmentation']['counts'], list)
                assert ann['segmentation']['size'] == [64, 64]
            else:
                assert ann['segmentation'] and all(
                    len(poly) >= 8 and len(poly) % 2 == 0 for poly in ann['segmentation'])
            decoded = coco.annToMask(ann).astype(bool)
            truth = ids == seg['id']
            assert (decoded & truth).sum() / (decoded | truth).sum() > 0.98


# ---------------------------------------------------------------------------
# Encoders and samples.
# ---------------------------------------------------------------------------
def _decode_polygons(polygons, shape):
    from pycocotools import mask as mask_utils
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygons, *shape))) > 0


def test_polygons_reproduce_masks_with_holes_and_parts():
    yy, xx = np.mgrid[0:40, 0:50]
    radius = np.hypot(xx - 15.3, yy - 18.7)
    mask = (radius <= 12) & (radius >= 6)  # a ring
    mask |= (np.abs(xx - 40) <= 4) & (np.abs(yy - 30) <= 7)  # a separate box
    mask[radius < 2] = True  # an island inside the hole
    mask[0, 49] = True  # a single pixel in the corner
    polygons = mask_to_polygons(mask)
    assert len(polygons) == 4
    np.testing.assert_array_equal(_decode_polygons(polygons, mask.shape), mask)
    assert mask_to_polygons(np.zeros((5, 5), dtype=bool)) == []


def test_uncompressed_rle_round_trip():
    from pycocotools import mask as mask_utils
    rng = np.random.default_rng(0)
    for first in (False, True):
        mask = rng.random((7, 9)) < 0.4
        mask[0, 0] = first
        rle = mask_to_uncompressed_rle(mask)
        assert rle['size'] == [7, 9] and sum(rle['counts']) == mask.size
        assert (rle['counts'][0] == 0) == first
        decoded = mask_utils.decode(mask_utils.frPyObjects([rle], 7, 9))[..., 0]
        np.testing.assert_array_equal(decoded > 0, mask)


def test_segments_info_from_id_map():
    id_map = np.array([[0, 7, 7], [9, 9, 7]])
    segments = [dict(id=7, category_id=37, iscrowd=0), dict(id=3, category_id=38, iscrowd=0),
                dict(id=9, category_id=199, iscrowd=0)]
    infos = segments_info_from_id_map(id_map, segments)
    assert infos == [dict(id=7, category_id=37, iscrowd=0, bbox=[1, 0, 2, 2], area=3),
                     dict(id=9, category_id=199, iscrowd=0, bbox=[0, 1, 2, 1], area=2)]
    with pytest.raises(ValueError):
        segments_info_from_id_map(id_map, segments[:1])


def _touching(first: np.ndarray, second: np.ndarray) -> bool:
    grown = cv2.dilate(first.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    return bool((grown & second).any())


def test_samples_hold_crowds_and_touching_instances():
    crowds = touching = 0
    seen = set()
    for index in range(60):
        image, id_map, segments = render_coco_sample((64, 64), np.random.default_rng([1, index]))
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        infos = segments_info_from_id_map(id_map, segments)
        assert len(infos) == len(segments) >= 1
        things = [s for s in infos if s['category_id'] in COCO_THING_SUBSET]
        assert all(s['area'] >= 0.01 * 64 * 64 for s in things)
        assert sum(1 for s in things if s['iscrowd']) <= 1
        crowds += any(s['iscrowd'] for s in things)
        instances = [s for s in things if not s['iscrowd']]
        touching += any(
            a['category_id'] == b['category_id']
            and _touching(id_map == a['id'], id_map == b['id'])
            for i, a in enumerate(instances) for b in instances[i + 1:])
        seen |= {s['category_id'] for s in infos}
    assert 4 <= crowds <= 24  # about 20 %
    assert touching >= 10
    assert seen == set(SYNTHETIC_COCO_CATEGORIES)


# ---------------------------------------------------------------------------
# Determinism and reuse.
# ---------------------------------------------------------------------------
def test_deterministic_by_seed(tmp_path):
    params = dict(num_train=2, num_val=1, img_size=48)
    for name, seed in (('a', 3), ('b', 3), ('c', 4)):
        generate_synthetic_coco(str(tmp_path / name), seed=seed, **params)
    first, second, third = (_listing(str(tmp_path / n)) for n in 'abc')
    assert first.keys() == second.keys() == third.keys()
    for name in first:
        if name != 'meta.json':
            assert first[name] == second[name], name
    pngs = [n for n in first if n.endswith('.png')]
    assert any(first[n] != third[n] for n in pngs)


def test_sample_does_not_depend_on_split_size(tmp_path):
    generate_synthetic_coco(str(tmp_path / 'small'), num_train=1, num_val=1, img_size=48)
    generate_synthetic_coco(str(tmp_path / 'large'), num_train=3, num_val=1, img_size=48)
    name = 'annotations/panoptic_val2017/000001000001.png'
    assert (tmp_path / 'small' / name).read_bytes() == (tmp_path / 'large' / name).read_bytes()


def test_progress_reports_each_split_and_not_on_reuse(tmp_path):
    calls = []
    params = dict(num_train=2, num_val=1, img_size=40)
    generate_synthetic_coco(str(tmp_path), progress=lambda *a: calls.append(a), **params)
    assert calls == [('train2017', 2, 2), ('val2017', 1, 1)]
    calls.clear()
    generate_synthetic_coco(str(tmp_path), progress=lambda *a: calls.append(a), **params)
    assert calls == []


def test_idempotent_and_regenerates_on_new_params(tmp_path):
    root, params = str(tmp_path), dict(num_train=3, num_val=1, img_size=48)
    first = generate_synthetic_coco(root, **params)
    assert first['generated'] is True and first['splits']['train2017']['num_images'] == 3
    img = tmp_path / 'train2017' / '000000000001.jpg'
    os.utime(img, (1, 1))
    again = generate_synthetic_coco(root, **params)
    assert again['generated'] is False and again['splits'] == first['splits']
    assert img.stat().st_mtime == 1  # not rewritten

    assert generate_synthetic_coco(root, **dict(params, num_train=2))['generated']
    assert sorted(p.name for p in (tmp_path / 'train2017').iterdir()) == [
        '000000000001.jpg', '000000000002.jpg']
    assert len(_load(root, 'panoptic_train2017.json')['images']) == 2
    assert img.stat().st_mtime != 1

    png = tmp_path / 'annotations' / 'panoptic_train2017' / '000000000002.png'
    png.unlink()  # a missing file triggers regeneration
    assert generate_synthetic_coco(root, **dict(params, num_train=2))['generated']
    assert png.is_file()


def test_interrupted_run_is_replaced(tmp_path):
    root, params = str(tmp_path), dict(num_train=2, num_val=1, img_size=48)
    generate_synthetic_coco(root, **params)
    meta = json.loads((tmp_path / 'meta.json').read_text())
    meta.update(complete=False, summary=None)
    (tmp_path / 'meta.json').write_text(json.dumps(meta))
    assert generate_synthetic_coco(root, **params)['generated'] is True
    assert json.loads((tmp_path / 'meta.json').read_text())['complete'] is True


@pytest.mark.parametrize('foreign', ['train2017/000000000001.jpg',
                                     'annotations/panoptic_val2017/000000000139.png',
                                     'annotations/instances_val2017.json'])
def test_refuses_to_overwrite_foreign_data(tmp_path, foreign):
    path = tmp_path / foreign
    path.parent.mkdir(parents=True)
    path.write_bytes(b'not ours')
    with pytest.raises(FileExistsError):
        generate_synthetic_coco(str(tmp_path), num_train=1, num_val=1, img_size=48)
    assert path.read_bytes() == b'not ours'
    assert not (tmp_path / 'meta.json').exists()


@pytest.mark.parametrize('kwargs', [
    dict(num_train=-1), dict(num_train=0, num_val=0), dict(img_size=16), dict(seed=-2),
    dict(jpeg_quality=101)])
def test_invalid_parameters(tmp_path, kwargs):
    with pytest.raises(ValueError):
        generate_synthetic_coco(str(tmp_path), **{'num_train': 1, 'num_val': 1, **kwargs})


# ---------------------------------------------------------------------------
# Command line.
# ---------------------------------------------------------------------------
def test_command_line(tmp_path):
    out = tmp_path / 'data'
    argv = [sys.executable, str(TOOL), str(out), '--num-train', '2', '--num-val', '1',
            '--img-size', '48', '--seed', '2']
    path = os.pathsep.join([str(REPO), os.environ.get('PYTHONPATH', '')])
    env = dict(os.environ, PYTHONPATH=path)
    done = subprocess.run(argv, cwd=str(REPO), env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert 'generated' in done.stdout and 'train2017: 2 images' in done.stdout
    assert 'train2017: 2/2 images' in done.stdout and 'val2017: 1/1 images' in done.stdout
    assert 'sports ball' in done.stdout and 'wall-other-merged' in done.stdout
    assert sorted(os.listdir(out / 'train2017')) == ['000000000001.jpg', '000000000002.jpg']


def _load_tool():
    spec = importlib.util.spec_from_file_location('synthetic_coco_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_command_line_reuses_and_defaults(tmp_path, capsys, monkeypatch):
    tool = _load_tool()
    assert tool.parse_args([]).out_root == 'data/synthetic_coco'
    assert tool.parse_args([]).num_train == 6000
    out = str(tmp_path / 'data')
    for _ in range(2):
        assert tool.main([out, '--num-train', '1', '--num-val', '1', '--size', '40']) == 0
    assert 'reused' in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)
    Path('foreign', 'val2017').mkdir(parents=True)
    Path('foreign', 'val2017', 'x.jpg').write_bytes(b'x')
    assert tool.main(['foreign', '--num-train', '1', '--num-val', '1', '--size', '40']) == 1
    assert 'refusing' in capsys.readouterr().err


@pytest.mark.parametrize('argv', [['--img-size', '8'], ['--num-train', '-3'], ['--seed', 'x'],
                                  ['--num-train', '0', '--num-val', '0']])
def test_command_line_rejects_bad_arguments(tmp_path, capsys, argv):
    tool = _load_tool()
    with pytest.raises(SystemExit) as exc:
        tool.main([str(tmp_path / 'data'), *argv])
    assert exc.value.code != 0
    assert 'error' in capsys.readouterr().err
    assert not (tmp_path / 'data').exists()
