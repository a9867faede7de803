"""Tests of MaskFormerDataPreprocessor and its padding helpers."""
import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData, PixelData
from mmseg.structures import SegDataSample

from mmseg_maskformer.models.data_preprocessors import (MaskFormerDataPreprocessor,
                                                        batch_pad_shape, pad_bottom_right)
from mmseg_maskformer.registry import MODELS

MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]


def _sample(h: int, w: int, seed: int):
    """An image (3, H, W) uint8 and a data sample with gt_sem_seg and gt_instances."""
    gen = torch.Generator().manual_seed(seed)
    img = torch.randint(0, 256, (3, h, w), generator=gen, dtype=torch.uint8)
    seg = torch.randint(0, 3, (1, h, w), generator=gen)
    seg[:, 0, :] = 255
    labels = seg.unique()
    labels = labels[labels != 255]
    sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
    sample.gt_sem_seg = PixelData(data=seg)
    sample.gt_instances = InstanceData(labels=labels, masks=seg[0][None] == labels[:, None, None])
    return img, sample


def _batch(shapes, seed=0):
    imgs, samples = zip(*(_sample(h, w, seed + i) for i, (h, w) in enumerate(shapes)))
    return dict(inputs=list(imgs), data_samples=list(samples))


def test_batch_pad_shape():
    assert batch_pad_shape([(20, 30), (25, 22)]) == (25, 30)
    assert batch_pad_shape([(20, 30), (25, 22)], size_divisor=8) == (32, 32)
    assert batch_pad_shape([(20, 30)], size=(40, 50)) == (40, 50)
    assert batch_pad_shape([(20, 30)], size=(40, 50), size_divisor=32) == (64, 64)
    with pytest.raises(ValueError):
        batch_pad_shape([(20, 60)], size=(40, 50))


def test_pad_bottom_right():
    x = torch.ones(2, 3, 4, dtype=torch.bool)
    y = pad_bottom_right(x, (5, 6), False)
    assert y.shape == (2, 5, 6) and y.dtype == torch.bool
    assert y[:, :3, :4].all() and not y[:, 3:].any() and not y[:, :, 4:].any()
    assert pad_bottom_right(x, (3, 4), False) is x
    with pytest.raises(ValueError):
        pad_bottom_right(x, (2, 4), False)


def test_training_batch_of_different_sizes():
    init_default_scope('mmseg_maskformer')
    preprocessor = MODELS.build(dict(type='MaskFormerDataPreprocessor', mean=MEAN, std=STD,
                                     bgr_to_rgb=True, size_divisor=8))
    assert isinstance(preprocessor, MaskFormerDataPreprocessor)
    data = _batch([(20, 30), (25, 22)])
    imgs = [img.clone() for img in data['inputs']]
    segs = [s.gt_sem_seg.data.clone() for s in data['data_samples']]
    masks = [s.gt_instances.masks.clone() for s in data['data_samples']]

    out = preprocessor(data, training=True)
    inputs, samples = out['inputs'], out['data_samples']
    assert inputs.shape == (2, 3, 32, 32) and inputs.dtype == torch.float32

    mean, std = torch.tensor(MEAN).view(3, 1, 1), torch.tensor(STD).view(3, 1, 1)
    for img, seg, mask, padded, sample in zip(imgs, segs, masks, inputs, samples):
        h, w = img.shape[1:]
        expected = (img.flip(0).float() - mean) / std  # BGR -> RGB, then normalise
        torch.testing.assert_close(padded[:, :h, :w], expected)
        assert (padded[:, h:] == 0).all() and (padded[:, :, w:] == 0).all()

        assert sample.metainfo['batch_input_shape'] == (32, 32)
        assert sample.metainfo['pad_shape'] == (32, 32)
        assert sample.metainfo['img_shape'] == (h, w)
        assert sample.metainfo['padding_size'] == [0, 32 - w, 0, 32 - h]

        padded_seg = sample.gt_sem_seg.data
        assert padded_seg.shape == (1, 32, 32)
        assert torch.equal(padded_seg[:, :h, :w], seg)
        assert (padded_seg[:, h:] == 255).all() and (padded_seg[:, :, w:] == 255).all()

        padded_masks = sample.gt_instances.masks
        assert padded_masks.shape == (mask.shape[0], 32, 32)
        assert padded_masks.dtype == torch.bool
        assert torch.equal(padded_masks[:, :h, :w], mask)
        assert not padded_masks[:, h:].any() and not padded_masks[:, :, w:].any()
        assert torch.equal(padded_masks.any(0), padded_seg[0] != 255)
        assert torch.equal(sample.gt_instances.labels, seg[seg != 255].unique())


def test_training_pads_to_batch_max_without_size_divisor():
    preprocessor = MaskFormerDataPreprocessor()
    data = _batch([(20, 30), (25, 22)])
    raw = data['inputs'][1].clone()
    out = preprocessor(data, training=True)
    assert out['inputs'].shape == (2, 3, 25, 30)
    torch.testing.assert_close(out['inputs'][1, :, :, :22], raw.float())  # no normalisation
    assert out['data_samples'][0].metainfo['pad_shape'] == (25, 30)
    assert out['data_samples'][0].gt_instances.masks.shape[1:] == (25, 30)


def test_training_with_fixed_size_and_empty_targets():
    preprocessor = MaskFormerDataPreprocessor(size=(16, 16), seg_pad_val=7, pad_val=-1)
    img = torch.zeros(3, 10, 12, dtype=torch.uint8)
    sample = SegDataSample()
    sample.gt_sem_seg = PixelData(data=torch.full((1, 10, 12), 255))
    sample.gt_instances = InstanceData(labels=torch.zeros(0, dtype=torch.long),
                                       masks=torch.zeros(0, 10, 12, dtype=torch.bool))
    out = preprocessor(dict(inputs=[img], data_samples=[sample]), training=True)
    assert out['inputs'].shape == (1, 3, 16, 16)
    assert (out['inputs'][0, :, 10:] == -1).all()
    assert out['data_samples'][0].gt_instances.masks.shape == (0, 16, 16)
    assert (out['data_samples'][0].gt_sem_seg.data[:, 10:] == 7).all()
    with pytest.raises(ValueError):
        preprocessor(_batch([(20, 12)]), training=True)


def test_test_mode_pads_images_only():
    preprocessor = MaskFormerDataPreprocessor(mean=MEAN, std=STD, size=(8, 8), size_divisor=4)
    data = _batch([(20, 30), (25, 22)])
    out = preprocessor(data, training=False)
    assert out['inputs'].shape == (2, 3, 28, 32)  # size_divisor applies, training size not
    for (h, w), sample in zip([(20, 30), (25, 22)], out['data_samples']):
        assert sample.gt_sem_seg.data.shape == (1, h, w)
        assert sample.gt_instances.masks.shape[1:] == (h, w)
        assert sample.metainfo['batch_input_shape'] == (28, 32)
        assert sample.metainfo['pad_shape'] == (28, 32)
        assert sample.metainfo['img_padding_size'] == [0, 32 - w, 0, 28 - h]

    with_cfg = MaskFormerDataPreprocessor(size_divisor=4, test_cfg=dict(size=(40, 40)))
    out = with_cfg(_batch([(20, 30), (25, 22)]), training=False)
    assert out['inputs'].shape == (2, 3, 40, 40)

    no_samples = MaskFormerDataPreprocessor()(dict(inputs=_batch([(9, 5), (4, 7)])['inputs']))
    assert no_samples['inputs'].shape == (2, 3, 9, 7) and no_samples['data_samples'] is None


def test_training_requires_data_samples():
    with pytest.raises(ValueError):
        MaskFormerDataPreprocessor()(dict(inputs=[torch.zeros(3, 4, 4)]), training=True)
