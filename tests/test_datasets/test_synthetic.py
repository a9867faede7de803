"""Tests of the synthetic ADE20K-layout dataset generator and its command line."""
import importlib.util
import json
import os
import os.path as osp
from pathlib import Path

import cv2
import numpy as np
import pytest

from mmseg_maskformer.datasets.synthetic import (STUFF_CLASSES, SYNTHETIC_CLASSES,
                                                 THING_CLASSES, generate_synthetic_ade20k,
                                                 _place_thing, render_sample, report_progress,
                                                 shape_mask)

TOOL = Path(__file__).resolve().parents[2] / 'tools' / 'dataset_converters' / 'synthetic_ade20k.py'
STORED_VALUES = {0} | {k + 1 for k in SYNTHETIC_CLASSES}


def _listing(root: str) -> dict:
    out = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            out[osp.relpath(osp.join(dirpath, name), root)] = Path(dirpath, name).read_bytes()
    return out


def test_classes_are_ade20k_classes():
    from mmseg.datasets import ADE20KDataset
    names = ADE20KDataset.METAINFO['classes']
    for index, name in SYNTHETIC_CLASSES.items():
        assert names[index].strip() == name
    assert set(STUFF_CLASSES).isdisjoint(THING_CLASSES)


def test_exact_ade20k_layout(synthetic_root):
    files = sorted(_listing(synthetic_root))
    expected = ['meta.json']
    for split, prefix, count in (('training', 'train', 3), ('validation', 'val', 6)):
        for i in range(1, count + 1):
            expected.append(f'annotations/{split}/ADE_{prefix}_{i:08d}.png')
            expected.append(f'images/{split}/ADE_{prefix}_{i:08d}.jpg')
    assert files == sorted(expected)

    img = cv2.imread(osp.join(synthetic_root, 'images/training/ADE_train_00000001.jpg'),
                     cv2.IMREAD_UNCHANGED)
    ann = cv2.imread(osp.join(synthetic_root, 'annotations/training/ADE_train_00000001.png'),
                     cv2.IMREAD_UNCHANGED)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    assert ann.shape == (64, 64) and ann.dtype == np.uint8
    assert set(np.unique(ann).tolist()) <= STORED_VALUES


def test_summary_and_meta(tmp_path):
    summary = generate_synthetic_ade20k(str(tmp_path), num_train=2, num_val=1, img_size=48)
    assert summary['generated'] is True
    assert summary['splits']['training']['num_images'] == 2
    for stats in summary['splits'].values():
        total = stats['ignore_fraction'] + sum(stats['class_pixel_fraction'].values())
        assert total == pytest.approx(1.0)
    meta = json.loads((tmp_path / 'meta.json').read_text())
    assert meta['params']['img_size'] == [48, 48]


def test_non_square_size(tmp_path):
    generate_synthetic_ade20k(str(tmp_path), num_train=1, num_val=0, img_size=(40, 56))
    img = cv2.imread(str(tmp_path / 'images/training/ADE_train_00000001.jpg'))
    assert img.shape == (40, 56, 3)
    assert not any((tmp_path / 'images/validation').iterdir())


def test_deterministic_by_seed(tmp_path):
    params = dict(num_train=2, num_val=2, img_size=48)
    generate_synthetic_ade20k(str(tmp_path / 'a'), seed=3, **params)
    generate_synthetic_ade20k(str(tmp_path / 'b'), seed=3, **params)
    generate_synthetic_ade20k(str(tmp_path / 'c'), seed=4, **params)
    first, second, third = (_listing(str(tmp_path / n)) for n in 'abc')
    assert first.keys() == second.keys() == third.keys()
    for name in first:
        if name != 'meta.json':
            assert first[name] == second[name], name
    anns = [n for n in first if n.endswith('.png')]
    assert any(first[n] != third[n] for n in anns)


def test_sample_does_not_depend_on_split_size(tmp_path):
    generate_synthetic_ade20k(str(tmp_path / 'small'), num_train=1, num_val=1, img_size=48)
    generate_synthetic_ade20k(str(tmp_path / 'large'), num_train=3, num_val=1, img_size=48)
    name = 'annotations/validation/ADE_val_00000001.png'
    assert (tmp_path / 'small' / name).read_bytes() == (tmp_path / 'large' / name).read_bytes()


def test_idempotent_and_regenerates_on_new_params(tmp_path):
    root = str(tmp_path)
    generate_synthetic_ade20k(root, num_train=3, num_val=1, img_size=48)
    img = tmp_path / 'images/training/ADE_train_00000001.jpg'
    os.utime(img, (1, 1))
    again = generate_synthetic_ade20k(root, num_train=3, num_val=1, img_size=48)
    assert again['generated'] is False
    assert img.stat().st_mtime == 1  # not rewritten

    smaller = generate_synthetic_ade20k(root, num_train=2, num_val=1, img_size=48)
    assert smaller['generated'] is True
    assert sorted(p.name for p in (tmp_path / 'images/training').iterdir()) == [
        'ADE_train_00000001.jpg', 'ADE_train_00000002.jpg']
    assert img.stat().st_mtime != 1

    # a missing file triggers regeneration
    (tmp_path / 'annotations/training/ADE_train_00000002.png').unlink()
    assert generate_synthetic_ade20k(root, num_train=2, num_val=1, img_size=48)['generated']
    assert (tmp_path / 'annotations/training/ADE_train_00000002.png').is_file()


def test_progress_reports_each_split_and_not_on_reuse(tmp_path):
    calls = []
    params = dict(num_train=3, num_val=1, img_size=48)
    generate_synthetic_ade20k(str(tmp_path), progress=lambda *a: calls.append(a), **params)
    assert calls == [('training', 3, 3), ('validation', 1, 1)]
    calls.clear()
    generate_synthetic_ade20k(str(tmp_path), progress=lambda *a: calls.append(a), **params)
    assert calls == []


def test_report_progress_every_n_and_last():
    calls = []
    for done in range(1, 6):
        report_progress(lambda *a: calls.append(a), 'training', done, 5, every=2)
    assert calls == [('training', 2, 5), ('training', 4, 5), ('training', 5, 5)]
    report_progress(None, 'training', 5, 5)  # no callback: nothing to call


def test_refuses_to_overwrite_foreign_data(tmp_path):
    foreign = tmp_path / 'images' / 'training' / 'ADE_train_00000001.jpg'
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b'not ours')
    with pytest.raises(FileExistsError):
        generate_synthetic_ade20k(str(tmp_path), num_train=1, num_val=1, img_size=48)
    assert foreign.read_bytes() == b'not ours'


@pytest.mark.parametrize('kwargs', [
    dict(num_train=-1), dict(num_train=0, num_val=0), dict(img_size=16), dict(seed=-2)])
def test_invalid_parameters(tmp_path, kwargs):
    with pytest.raises(ValueError):
        generate_synthetic_ade20k(str(tmp_path), **{'num_train': 1, 'num_val': 1, **kwargs})


def test_rendered_samples_cover_all_classes():
    seen = set()
    for index in range(40):
        image, label = render_sample((64, 80), np.random.default_rng([0, index]))
        assert image.shape == (64, 80, 3) and image.dtype == np.uint8
        assert label.shape == (64, 80) and label.dtype == np.uint8
        values = set(np.unique(label).tolist())
        assert values <= STORED_VALUES
        assert values & {k + 1 for k in THING_CLASSES}, 'every image holds a thing'
        seen |= values
    assert seen == STORED_VALUES


def test_things_are_placed_clear_of_earlier_things():
    rng = np.random.default_rng(3)
    shape = (64, 64)
    taken = np.zeros(shape, dtype=bool)
    taken[:, :24] = True
    for _ in range(10):
        label, mask = _place_thing(shape, rng, taken)
        assert label in THING_CLASSES and mask.any() and not (mask & taken).any()
    assert _place_thing(shape, rng, np.ones(shape, dtype=bool)) is None


def test_shape_masks():
    rng = np.random.default_rng(0)
    size, centre, shape = 40.0, (50.0, 50.0), (100, 100)
    disc = shape_mask(119, shape, centre, size, 0.3, rng)
    assert disc.sum() == pytest.approx(np.pi * 20**2, rel=0.05)
    ring = shape_mask(142, shape, centre, size, 0.0, rng)
    assert not ring[50, 50] and ring.sum() < disc.sum() and (ring & ~disc).sum() == 0
    plus = shape_mask(43, shape, centre, size, 0.0, rng)
    assert plus[50, 50] and plus[50, 68] and not plus[32, 32]
    box = shape_mask(41, shape, centre, size, 0.0, rng)
    assert box[50, 69] and not box[50, 71] and box[39, 50] and not box[29, 50]
    assert 40 * 24 <= box.sum() <= 41 * 41
    bar = shape_mask(41, shape, centre, size, 0.0, rng, box_aspect=(0.35, 0.55))
    assert bar[50, 69] and not bar[50, 71] and not bar[37, 50] and bar[43, 50]
    assert 40 * 14 <= bar.sum() <= 41 * 23
    tent = shape_mask(114, shape, centre, size, 0.0, rng)
    side = 2 * np.sqrt(3) * 0.35 * size
    assert tent.sum() == pytest.approx(np.sqrt(3) / 4 * side**2, rel=0.08)
    with pytest.raises(ValueError):
        shape_mask(0, shape, centre, size, 0.0, rng)


def _load_tool():
    spec = importlib.util.spec_from_file_location('synthetic_ade20k_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_command_line(tmp_path, capsys):
    tool = _load_tool()
    out = str(tmp_path / 'data')
    assert tool.main([out, '--num-train', '2', '--num-val', '1', '--size', '48']) == 0
    printed = capsys.readouterr().out
    assert 'generated' in printed and 'ball' in printed and 'wall' in printed
    assert 'training: 2/2 images' in printed and 'validation: 1/1 images' in printed
    assert len(os.listdir(osp.join(out, 'images', 'training'))) == 2
    assert tool.main([out, '--num-train', '2', '--num-val', '1', '--size', '48']) == 0
    assert 'reused' in capsys.readouterr().out


@pytest.mark.parametrize('argv', [['--size', '8'], ['--num-train', '-3'], ['--seed', 'x'],
                                  ['--num-train', '0', '--num-val', '0']])
def test_command_line_rejects_bad_arguments(tmp_path, capsys, argv):
    tool = _load_tool()
    with pytest.raises(SystemExit) as exc:
        tool.main([str(tmp_path / 'data'), *argv])
    assert exc.value.code != 0
    assert 'error' in capsys.readouterr().err
    assert not (tmp_path / 'data').exists()
