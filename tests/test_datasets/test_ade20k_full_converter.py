"""ADE20K-Full preparation on a tiny raw ADE20K 2021 release written here."""
import importlib.util
import os
import os.path as osp
import pickle
import subprocess
import sys
from typing import Tuple

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image

from mmseg_maskformer.datasets import ADE20K_FULL_CLASSES
from mmseg_maskformer.datasets.converters.ade20k_full import (
    ADE20K_FULL_CATEGORIES, UnsafeIndexError, ade_class_map, load_index, resize_pair,
    resized_shape, split_of, train_id_lut)
from mmseg_maskformer.registry import DATASETS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLI = osp.join(REPO, 'tools', 'dataset_converters', 'ade20k_full.py')
CONFIG = osp.join(REPO, 'configs', '_base_', 'datasets', 'ade20k_full.py')
RELEASE = 'ADE20K_2021_17_01'
IGNORE = 65535
TRAIN_ID = {class_id: train_id for train_id, (class_id, _) in enumerate(ADE20K_FULL_CATEGORIES)}
#: ADE object classes that are not among the 847 (the release has 3,688).
OUTSIDE = [c for c in (1, 2, 3000, 3157, 3688) if c not in TRAIN_ID]
#: Inside the 847: train ids 0 (wall), 255, 256 and 846 (above uint8).
INSIDE = [ADE20K_FULL_CATEGORIES[t][0] for t in (0, 255, 256, 846)]


def encode(classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Raw ``*_seg.png`` pixels of an (H, W) class map: R = 10 * (c // 256) + noise < 10."""
    seg = np.zeros(classes.shape + (3,), dtype=np.uint8)
    seg[..., 0] = classes // 256 * 10 + rng.integers(0, 10, classes.shape)  # units ignored
    seg[..., 1] = classes % 256
    seg[..., 2] = rng.integers(0, 256, classes.shape)  # instance channel, unused
    return seg


def class_blocks(height: int, width: int, values, rng) -> np.ndarray:
    """A class map of random blocks of ``values`` (block size 4)."""
    blocks = rng.choice(np.asarray(values), size=(-(-height // 4), -(-width // 4)))
    return np.kron(blocks, np.ones((4, 4), dtype=np.int64))[:height, :width]


#: name -> (index folder below the release, height, width, grey image).
IMAGES = {
    'ADE_train_00000001': ('images/ADE/training/urban/street', 12, 16, False),
    'ADE_train_00000002': ('images/ADE/training/home_or_hotel/bedroom/misc', 9, 7, True),
    'ADE_val_00000001': ('images/ADE/validation/cultural/apse_indoor', 521, 530, False),
}


def write_index(path: str, names, protocol: int = 4) -> None:
    """An ``index_ade20k.pkl`` with the structure of the release (lists and arrays)."""
    num_classes = 3688
    index = {
        'filename': [f'{name}.jpg' for name in names],
        'folder': np.array([f'{RELEASE}/{IMAGES[n][0]}' for n in names]),
        'scene': [IMAGES[n][0].split('/')[3:] for n in names],
        'objectnames': [f'object {i + 1}' for i in range(num_classes)],
        'objectPresence': np.zeros((num_classes, len(names)), dtype=np.uint8),
        'objectcounts': np.zeros(num_classes, dtype=np.int64),
        'wordnet_frequency': np.float64(0.5),
        'description': {'filename': 'array of length N with the image file names'},
    }
    for class_id, name in ADE20K_FULL_CATEGORIES:
        index['objectnames'][class_id - 1] = name
    with open(path, 'wb') as file:
        pickle.dump(index, file, protocol=protocol)


@pytest.fixture
def raw_release(tmp_path):
    """The raw release with the images of ``IMAGES``; returns (root, {name: classes})."""
    root = tmp_path / RELEASE
    rng = np.random.default_rng(0)
    classes = {}
    for name, (folder, height, width, grey) in IMAGES.items():
        (root / folder).mkdir(parents=True)
        classes[name] = class_blocks(height, width, [0] + INSIDE + OUTSIDE, rng)
        shape = (height, width) if grey else (height, width, 3)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(
            root / folder / f'{name}.jpg')
        Image.fromarray(encode(classes[name], rng)).save(root / folder / f'{name}_seg.png')
    write_index(str(root / 'index_ade20k.pkl'), IMAGES)
    return str(root), classes


def brute_force_labels(seg_png: str) -> np.ndarray:
    """Pixel-by-pixel decoding (int(R / 10) * 256 + G) and table lookup."""
    seg = np.asarray(Image.open(seg_png))
    labels = np.empty(seg.shape[:2], dtype=np.uint16)
    for y in range(seg.shape[0]):
        for x in range(seg.shape[1]):
            red, green = int(seg[y, x, 0]), int(seg[y, x, 1])
            labels[y, x] = TRAIN_ID.get(int(red / 10) * 256 + green, IGNORE)
    return labels


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """Run the converter command line in a fresh interpreter."""
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, CLI, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def cli_main(capsys, *args: str) -> Tuple[int, str, str]:
    """Run the command line's ``main`` in this process (faster than a new interpreter).

    Returns:
        The exit status, stdout and stderr.
    """
    spec = importlib.util.spec_from_file_location('ade20k_full_cli', CLI)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    capsys.readouterr()
    status = module.main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def test_table_matches_the_dataset_classes():
    assert tuple(name for _, name in ADE20K_FULL_CATEGORIES) == ADE20K_FULL_CLASSES
    class_ids = [class_id for class_id, _ in ADE20K_FULL_CATEGORIES]
    assert len(set(class_ids)) == 847 and min(class_ids) > 0
    lut = train_id_lut()
    assert lut.dtype == np.uint16
    assert all(lut[class_id] == train_id for train_id, class_id in enumerate(class_ids))
    assert (np.delete(lut, class_ids) == IGNORE).all()
    with pytest.raises(ValueError, match='repeated'):
        train_id_lut(ADE20K_FULL_CATEGORIES[:2] + ADE20K_FULL_CATEGORIES[:1])
    # name_ndx of objects in the release's sample annotation ADE_train_00016869.json
    sample = {'traffic light, traffic signal, stoplight': 2836, 'building, edifice': 312,
              'car, auto, automobile, machine, motorcar': 401, 'sky': 2420, 'tree': 2855}
    assert {name: class_id for class_id, name in ADE20K_FULL_CATEGORIES if name in sample} == sample


def test_class_map_decodes_red_tens_and_green():
    red = np.arange(256, dtype=np.uint8).reshape(16, 16)
    green = red[::-1].copy()
    seg = np.stack([red, green, np.zeros_like(red)], axis=-1)
    expected = [[int(int(r) / 10) * 256 + int(g) for r, g in zip(rr, gg)]
                for rr, gg in zip(red, green)]
    decoded = ade_class_map(seg)
    assert decoded.dtype == np.int32
    np.testing.assert_array_equal(decoded, expected)
    with pytest.raises(ValueError, match='uint8'):
        ade_class_map(seg[..., 0])


@pytest.mark.parametrize('height,width', [(600, 1000), (1000, 600), (513, 513), (512, 4000),
                                          (30, 20)])
def test_resize_follows_the_official_rule(height, width):
    shape = resized_shape(height, width)
    short, long = min(height, width), max(height, width)
    if short <= 512:
        assert shape is None
    else:
        new_long = round(long * 512 / short)
        assert shape == ((512, new_long) if height <= width else (new_long, 512))
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    classes = rng.choice(np.array([0, 7, 3000], dtype=np.int32), size=(height, width))
    new_image, new_classes = resize_pair(image, classes)
    assert new_image.shape[:2] == new_classes.shape == (shape or (height, width))
    assert new_classes.dtype == np.int32
    assert set(np.unique(new_classes)) <= {0, 7, 3000}  # nearest: no blended classes


def test_split_of_follows_the_file_name():
    assert split_of('ADE_val_00000001.jpg') == 'validation'
    assert split_of('ADE_train_00000001.jpg') == 'training'
    assert split_of('ADE_frame_00000001.jpg') == 'training'


def expected_outputs(root: str, classes: dict, name: str):
    """(image shape, labels) expected for image ``name`` of the raw release."""
    folder, height, width, grey = IMAGES[name]
    labels = brute_force_labels(osp.join(root, folder, f'{name}_seg.png'))
    np.testing.assert_array_equal(  # the fixture encodes what it means to
        labels, np.vectorize(lambda c: TRAIN_ID.get(c, IGNORE))(classes[name]))
    shape = resized_shape(height, width)
    if shape is not None:  # nearest neighbour as OpenCV, on the brute-force labels
        labels = cv2.resize(labels, shape[::-1], interpolation=cv2.INTER_NEAREST)
    return (shape or (height, width)) + (() if grey else (3,)), labels


def test_cli_converts_pixel_by_pixel_and_resumes(raw_release, tmp_path, capsys):
    root, classes = raw_release
    out = str(tmp_path / 'out')
    first = run_cli(root, '--out-dir', out, '--nproc', '2')
    assert first.returncode == 0, first.stderr
    assert 'training: 2 images, 2 converted, 0 skipped' in first.stdout
    assert 'validation: 1 images, 1 converted, 0 skipped' in first.stdout
    seen = set()
    for name in IMAGES:
        split = split_of(name)
        image_shape, labels = expected_outputs(root, classes, name)
        seen.update(np.unique(labels).tolist())
        with Image.open(osp.join(out, 'annotations_detectron2', split, f'{name}.tif')) as tif:
            assert tif.mode == 'I;16'
            np.testing.assert_array_equal(np.asarray(tif), labels)
        assert np.asarray(Image.open(
            osp.join(out, 'images_detectron2', split, f'{name}.jpg'))).shape == image_shape
    assert {IGNORE, 0, 255, 256, 846} <= seen
    tif = osp.join(out, 'annotations_detectron2', 'validation', 'ADE_val_00000001.tif')
    mtime = os.stat(tif).st_mtime_ns
    status, stdout, _ = cli_main(capsys, root, '--out-dir', out, '--splits', 'validation')
    assert status == 0 and 'validation: 1 images, 0 converted, 1 skipped' in stdout
    assert os.stat(tif).st_mtime_ns == mtime
    status, stdout, _ = cli_main(capsys, root, '--out-dir', out, '--splits', 'validation',
                                 '--overwrite')
    assert status == 0 and 'validation: 1 images, 1 converted, 0 skipped' in stdout
    assert os.stat(tif).st_mtime_ns != mtime
    # no temporary file of the atomic writes is left
    assert not [f for _, _, files in os.walk(out) for f in files if f.endswith(('.tmp', '.part'))]


def test_outputs_load_through_the_dataset_config(raw_release, capsys):
    root, classes = raw_release
    assert cli_main(capsys, root, '--splits', 'training')[0] == 0  # outputs in the release
    cfg = Config.fromfile(CONFIG)
    dataset_cfg = cfg.val_dataloader.dataset
    dataset_cfg.update(data_root=root, data_prefix=dict(
        img_path='images_detectron2/training', seg_map_path='annotations_detectron2/training'))
    init_default_scope('mmseg_maskformer')
    dataset = DATASETS.build(dataset_cfg)
    assert len(dataset) == 2 and tuple(dataset.metainfo['classes']) == ADE20K_FULL_CLASSES
    for i, name in enumerate(sorted(n for n in IMAGES if split_of(n) == 'training')):
        sample = dataset[i]['data_samples']
        assert sample.img_path.endswith(f'{name}.jpg')
        _, labels = expected_outputs(root, classes, name)
        np.testing.assert_array_equal(sample.gt_sem_seg.data[0].numpy(), labels)


def test_index_loads_with_every_pickle_protocol(tmp_path):
    for protocol in (2, 3, 4, 5):
        path = str(tmp_path / f'index_{protocol}.pkl')
        write_index(path, ['ADE_val_00000001', 'ADE_train_00000001'], protocol)
        index = load_index(path)
        assert index['filename'] == ['ADE_val_00000001.jpg', 'ADE_train_00000001.jpg']
        assert index['folder'][0] == f'{RELEASE}/{IMAGES["ADE_val_00000001"][0]}'


class Exploit:
    """Unpickling it would run a shell command."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def test_malicious_index_is_refused(raw_release, tmp_path, capsys):
    root, _ = raw_release
    marker = tmp_path / 'pwned'
    index = {'filename': ['ADE_train_00000001.jpg'], 'folder': [Exploit(str(marker))]}
    with open(osp.join(root, 'index_ade20k.pkl'), 'wb') as file:
        pickle.dump(index, file)
    with pytest.raises(UnsafeIndexError, match=r'refusing to read .*system'):
        load_index(osp.join(root, 'index_ade20k.pkl'))
    status, _, stderr = cli_main(capsys, root)
    assert status == 1 and 'refusing to read' in stderr and '--index' in stderr
    assert not marker.exists()
    assert not osp.exists(osp.join(root, 'images_detectron2'))


def test_cli_names_missing_inputs(raw_release, tmp_path, capsys):
    root, _ = raw_release
    status, _, stderr = cli_main(capsys, str(tmp_path / 'nowhere'))
    assert status == 1 and 'ADE20K_2021_17_01.zip' in stderr
    seg = osp.join(root, IMAGES['ADE_val_00000001'][0], 'ADE_val_00000001_seg.png')
    os.remove(seg)
    status, _, stderr = cli_main(capsys, root, '--splits', 'validation')
    assert status == 1 and seg in stderr
    assert not osp.exists(osp.join(root, 'annotations_detectron2'))
    os.remove(osp.join(root, 'index_ade20k.pkl'))
    status, _, stderr = cli_main(capsys, root)
    assert status == 1 and 'index_ade20k.pkl' in stderr
