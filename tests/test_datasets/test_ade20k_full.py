"""ADE20K-Full: the official 16-bit layout loads with labels above 255 intact."""
import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope

from mmseg_maskformer.datasets import ADE20K_FULL_CLASSES, ADE20KFullDataset
from mmseg_maskformer.registry import DATASETS, TRANSFORMS

IGNORE = 65535


def write_fake_layout(root) -> dict:
    """Two 8x6 images with uint16 TIFF labels in the official folders.

    Returns:
        ``{name: label map}`` of what was written.
    """
    img_dir = root / 'images_detectron2' / 'training'
    ann_dir = root / 'annotations_detectron2' / 'training'
    img_dir.mkdir(parents=True)
    ann_dir.mkdir(parents=True)
    labels = {
        'ADE_train_00000001': np.array([[0, 300], [846, IGNORE]], dtype=np.uint16),
        'ADE_train_00000002': np.array([[255, 256], [IGNORE, 5]], dtype=np.uint16),
    }
    rng = np.random.default_rng(0)
    written = {}
    for name, blocks in labels.items():
        seg = np.kron(blocks, np.ones((4, 3), dtype=np.uint16))  # (8, 6)
        cv2.imwrite(str(img_dir / f'{name}.jpg'),
                    rng.integers(0, 255, (8, 6, 3), dtype=np.uint8))
        assert cv2.imwrite(str(ann_dir / f'{name}.tif'), seg)
        written[name] = seg
    return written


def build_dataset(root, pipeline, **kwargs) -> ADE20KFullDataset:
    init_default_scope('mmseg_maskformer')
    return DATASETS.build(dict(
        type='ADE20KFullDataset',
        data_root=str(root),
        data_prefix=dict(img_path='images_detectron2/training',
                         seg_map_path='annotations_detectron2/training'),
        pipeline=pipeline,
        **kwargs))


def test_classes_are_the_847_official_ones():
    assert len(ADE20K_FULL_CLASSES) == 847
    assert len(set(ADE20K_FULL_CLASSES)) == 847
    assert ADE20K_FULL_CLASSES[0] == 'wall'
    assert ADE20K_FULL_CLASSES[-1] == 'adding machine, totalizer, totaliser'


@pytest.mark.parametrize('backend', ['pillow', 'cv2'])
def test_pipeline_keeps_16bit_labels(tmp_path, backend):
    written = write_fake_layout(tmp_path)
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='Load16BitAnnotations', imdecode_backend=backend),
        dict(type='GenerateMaskTargets', ignore_index=IGNORE),
        dict(type='PackMaskFormerInputs'),
    ]
    dataset = build_dataset(tmp_path, pipeline)
    assert len(dataset) == 2
    assert len(dataset.metainfo['classes']) == 847
    for i, name in enumerate(sorted(written)):
        sample = dataset[i]['data_samples']
        assert sample.img_path.endswith(f'{name}.jpg')
        seg = written[name]
        np.testing.assert_array_equal(sample.gt_sem_seg.data[0].numpy(), seg)
        expected = sorted(set(np.unique(seg).tolist()) - {IGNORE})
        assert sample.gt_instances.labels.tolist() == expected
        masks = sample.gt_instances.masks.numpy()
        for label, mask in zip(expected, masks):
            np.testing.assert_array_equal(mask, seg == label)
    # the loader keeps the file's integer type instead of mmseg's uint8 cast
    results = TRANSFORMS.build(dict(type='Load16BitAnnotations'))(dataset.get_data_info(0))
    assert results['gt_seg_map'].dtype == np.uint16


def test_class_subset_maps_dropped_classes_to_ignore(tmp_path):
    write_fake_layout(tmp_path)
    classes = (ADE20K_FULL_CLASSES[846], ADE20K_FULL_CLASSES[0])
    dataset = build_dataset(tmp_path, [dict(type='Load16BitAnnotations')],
                            metainfo=dict(classes=classes))
    seg = dataset[0]['gt_seg_map']  # labels 0, 300, 846, 65535
    assert sorted(np.unique(seg).tolist()) == [0, 1, IGNORE]
    assert (seg[:4, :3] == 1).all() and (seg[4:, :3] == 0).all()  # wall -> 1, 846 -> 0
    assert (seg[:4, 3:] == IGNORE).all()  # 300 was dropped


def test_reduce_zero_label_is_rejected(tmp_path):
    write_fake_layout(tmp_path)
    with pytest.raises(ValueError, match='reduce_zero_label'):
        build_dataset(tmp_path, [], reduce_zero_label=True)
    with pytest.raises(ValueError, match='reduce_zero_label'):
        TRANSFORMS.build(dict(type='Load16BitAnnotations', reduce_zero_label=True))
