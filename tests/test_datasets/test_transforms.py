"""Tests of the mask-target and packing transforms, alone and in an ADE20K pipeline."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData, PixelData

from mmseg_maskformer.datasets.synthetic import SYNTHETIC_CLASSES
from mmseg_maskformer.datasets.transforms import (GenerateMaskTargets, PackMaskFormerInputs,
                                                  semantic_to_mask_targets)
from mmseg_maskformer.registry import DATASETS, TRANSFORMS

CROP = 48


def test_semantic_to_mask_targets():
    seg = np.array([[3, 3, 255], [1, 255, 3], [1, 1, 0]], dtype=np.uint8)
    masks, labels = semantic_to_mask_targets(seg)
    assert masks.dtype == bool and masks.shape == (3, 3, 3)
    assert labels.dtype == np.int64 and labels.tolist() == [0, 1, 3]
    for mask, label in zip(masks, labels):
        np.testing.assert_array_equal(mask, seg == label)
    np.testing.assert_array_equal(masks.any(0), seg != 255)
    assert masks.sum(0).max() == 1

    masks, labels = semantic_to_mask_targets(seg, ignore_index=3)
    assert labels.tolist() == [0, 1, 255]
    with pytest.raises(ValueError):
        semantic_to_mask_targets(seg[None])


def test_generate_mask_targets_transform():
    transform = TRANSFORMS.build(dict(type='GenerateMaskTargets'))
    assert isinstance(transform, GenerateMaskTargets)
    assert repr(transform) == 'GenerateMaskTargets(ignore_index=255)'
    seg = np.full((5, 7), 255, dtype=np.uint8)
    seg[1:3, 2:6] = 12
    results = transform(dict(gt_seg_map=seg))
    assert results['gt_labels'].tolist() == [12]
    np.testing.assert_array_equal(results['gt_masks'][0], seg == 12)
    with pytest.raises(KeyError):
        transform(dict(img=np.zeros((2, 2, 3))))


def test_generate_mask_targets_empty_image():
    results = GenerateMaskTargets(ignore_index=0)(dict(gt_seg_map=np.zeros((4, 6), np.int64)))
    assert results['gt_masks'].shape == (0, 4, 6) and results['gt_masks'].dtype == bool
    assert results['gt_labels'].shape == (0,) and results['gt_labels'].dtype == np.int64

    packed = PackMaskFormerInputs()(dict(img=np.zeros((4, 6, 3), np.uint8), **results))
    instances = packed['data_samples'].gt_instances
    assert instances.masks.shape == (0, 4, 6) and instances.masks.dtype == torch.bool
    assert instances.labels.shape == (0,) and instances.labels.dtype == torch.int64


def test_pack_maskformer_inputs():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    seg = rng.integers(0, 4, size=(6, 8)).astype(np.uint8)
    results = GenerateMaskTargets()(dict(
        img=img, gt_seg_map=seg, img_path='a.jpg', ori_shape=(6, 8), img_shape=(6, 8),
        reduce_zero_label=True, unrelated='x'))
    transform = PackMaskFormerInputs()
    assert 'PackMaskFormerInputs(meta_keys=' in repr(transform)
    packed = transform(results)

    inputs = packed['inputs']
    assert inputs.shape == (3, 6, 8) and inputs.dtype == torch.uint8 and inputs.is_contiguous()
    np.testing.assert_array_equal(inputs.numpy(), img.transpose(2, 0, 1))

    sample = packed['data_samples']
    assert isinstance(sample.gt_sem_seg, PixelData)
    assert sample.gt_sem_seg.data.shape == (1, 6, 8)
    assert sample.gt_sem_seg.data.dtype == torch.int64
    np.testing.assert_array_equal(sample.gt_sem_seg.data[0].numpy(), seg)
    assert isinstance(sample.gt_instances, InstanceData)
    assert sample.gt_instances.masks.dtype == torch.bool
    assert sample.gt_instances.labels.dtype == torch.int64
    np.testing.assert_array_equal(sample.gt_instances.labels.numpy(), np.unique(seg))
    assert set(sample.metainfo) == {'img_path', 'ori_shape', 'img_shape', 'reduce_zero_label'}


def test_pack_without_targets_and_non_contiguous_image():
    img = np.arange(2 * 3 * 3, dtype=np.float32).reshape(3, 2, 3).transpose(1, 0, 2)
    assert not img.flags.c_contiguous
    packed = PackMaskFormerInputs(meta_keys=('flip',))(dict(img=img, flip=False))
    assert packed['inputs'].dtype == torch.float32 and packed['inputs'].is_contiguous()
    np.testing.assert_array_equal(packed['inputs'].numpy(), img.transpose(2, 0, 1))
    sample = packed['data_samples']
    assert 'gt_sem_seg' not in sample and 'gt_instances' not in sample
    assert sample.metainfo == {'flip': False}

    gray = PackMaskFormerInputs()(dict(img=np.zeros((4, 5), np.uint8)))
    assert gray['inputs'].shape == (1, 4, 5)
    with pytest.raises(KeyError):
        PackMaskFormerInputs()(dict(img=img, gt_masks=np.zeros((1, 2, 3), bool)))


def _build_dataset(root: str, crop: bool):
    init_default_scope('mmseg_maskformer')
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations', reduce_zero_label=True)]
    if crop:
        pipeline.append(dict(type='RandomCrop', crop_size=(CROP, CROP)))
    pipeline += [dict(type='GenerateMaskTargets'), dict(type='PackMaskFormerInputs')]
    return DATASETS.build(dict(
        type='ADE20KDataset', data_root=root,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        pipeline=pipeline))


def _check_targets(sample, shape):
    seg = sample.gt_sem_seg.data[0]
    masks, labels = sample.gt_instances.masks, sample.gt_instances.labels
    assert seg.shape == shape and masks.shape[1:] == shape
    assert masks.dtype == torch.bool and labels.dtype == torch.int64
    assert labels.tolist() == sorted(set(seg.unique().tolist()) - {255})
    assert set(labels.tolist()) <= set(SYNTHETIC_CLASSES)
    assert torch.equal(masks.any(0), seg != 255)
    assert int(masks.sum(0).max()) <= 1
    for mask, label in zip(masks, labels):
        assert torch.equal(mask, seg == label)


def test_ade20k_pipeline_without_crop(synthetic_root):
    dataset = _build_dataset(synthetic_root, crop=False)
    assert len(dataset) == 6
    data = dataset[0]
    sample = data['data_samples']
    assert data['inputs'].shape == (3, 64, 64) and data['inputs'].dtype == torch.uint8
    assert sample.metainfo['reduce_zero_label'] is True
    assert osp.basename(sample.metainfo['img_path']) == 'ADE_val_00000001.jpg'
    assert sample.metainfo['ori_shape'] == (64, 64)
    _check_targets(sample, (64, 64))

    stored = cv2.imread(osp.join(synthetic_root, 'annotations/validation/ADE_val_00000001.png'),
                        cv2.IMREAD_UNCHANGED).astype(np.int64)
    expected = np.where(stored == 0, 255, stored - 1)
    np.testing.assert_array_equal(sample.gt_sem_seg.data[0].numpy(), expected)


def test_ade20k_pipeline_with_random_crop(synthetic_root):
    dataset = _build_dataset(synthetic_root, crop=True)
    np.random.seed(0)  # RandomCrop draws from numpy's global generator
    num_ignored = 0
    for index in range(len(dataset)):
        data = dataset[index]
        assert data['inputs'].shape == (3, CROP, CROP)
        sample = data['data_samples']
        assert sample.metainfo['img_shape'] == (CROP, CROP)
        _check_targets(sample, (CROP, CROP))
        num_ignored += int((sample.gt_sem_seg.data == 255).sum())
    assert num_ignored > 0, 'the synthetic data should contain ignored pixels'
