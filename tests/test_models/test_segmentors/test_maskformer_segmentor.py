"""MaskFormerSegmentor: test_cfg validation and the three outputs of one forward pass."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmseg.structures import SegDataSample

from mmseg_maskformer.models.postprocess import (instance_inference, panoptic_inference,
                                                 resize_to_original, semantic_inference)
from mmseg_maskformer.registry import MODELS
from mmseg_maskformer.utils import INSTANCE_OFFSET

NUM_CLASSES = 5
THINGS = [1, 3]


def tiny_segmentor(channels_last=False, **test_cfg):
    init_default_scope('mmseg_maskformer')
    return MODELS.build(dict(
        type='MaskFormerSegmentor',
        channels_last=channels_last,
        data_preprocessor=dict(type='MaskFormerDataPreprocessor', size_divisor=32),
        backbone=dict(type='ResNet', depth=18, base_channels=8, stem_channels=8,
                      out_indices=(0, 1, 2, 3)),
        decode_head=dict(
            type='Mask2FormerDecodeHead',
            num_classes=NUM_CLASSES,
            in_channels=[8, 16, 32, 64],
            pixel_decoder=dict(type='MultiScaleDeformablePixelDecoder', feat_channels=16,
                               out_channels=16, num_encoder_layers=1, num_heads=2,
                               feedforward_dims=32, num_groups=4),
            transformer_decoder=dict(embed_dims=16, num_queries=6, num_heads=2, num_layers=2,
                                     feedforward_dims=32),
            criterion=dict(type='MaskFormerCriterion',
                           matcher=dict(type='HungarianPointMatcher', num_points=16),
                           num_points=16)),
        test_cfg=test_cfg))


@pytest.mark.parametrize('test_cfg, message', [
    (dict(semantic_on=False), 'switches every output off'),
    (dict(panoptic_on=True), 'thing_class_ids'),
    (dict(panoptic_on=True, thing_class_ids=[1, NUM_CLASSES]), 'outside'),
])
def test_invalid_test_cfg_is_rejected_at_build(test_cfg, message):
    with pytest.raises(ValueError, match=message):
        tiny_segmentor(**test_cfg)


def test_three_outputs_equal_the_pure_functions():
    """Every output is the post-processing of the same forward pass, at the original size."""
    torch.manual_seed(0)
    model = tiny_segmentor(semantic_on=True, panoptic_on=True, instance_on=True,
                           thing_class_ids=THINGS, object_mask_threshold=0.0,
                           max_per_image=7).eval()
    inputs = torch.randn(1, 3, 64, 96)
    meta = dict(img_shape=(64, 96), ori_shape=(48, 72), batch_input_shape=(64, 96))
    with torch.no_grad():
        cls_logits, mask_logits = model(inputs, mode='tensor')
        pred = model(inputs, [SegDataSample(metainfo=meta)], mode='predict')[0]
    masks = resize_to_original(mask_logits[0], (64, 96), (64, 96), (48, 72))
    scores = semantic_inference(cls_logits[0], masks)
    torch.testing.assert_close(pred.seg_logits.data, scores)
    assert torch.equal(pred.pred_sem_seg.data[0], scores.argmax(0))

    is_thing = torch.zeros(NUM_CLASSES, dtype=torch.bool)
    is_thing[THINGS] = True
    panoptic, _ = panoptic_inference(cls_logits[0], masks, is_thing, 0.0, 0.8)
    assert pred.pred_panoptic_seg.sem_seg.shape == (1, 48, 72)
    assert torch.equal(pred.pred_panoptic_seg.sem_seg[0], panoptic)

    instances = instance_inference(cls_logits[0], masks, topk=7, is_thing=is_thing)
    assert len(pred.pred_instances) == len(instances['labels']) <= 7
    assert pred.pred_instances.masks.shape[1:] == (48, 72)
    assert set(pred.pred_instances.labels.tolist()) <= set(THINGS)
    torch.testing.assert_close(pred.pred_instances.scores, instances['scores'])


def test_outputs_follow_the_switches():
    model = tiny_segmentor(semantic_on=False, instance_on=True).eval()
    with torch.no_grad():
        pred = model(torch.randn(1, 3, 32, 32), mode='predict')[0]
    assert 'pred_sem_seg' not in pred and 'pred_panoptic_seg' not in pred
    # without panoptic output, instances may be of any class (instance-only models)
    assert len(pred.pred_instances) == 6 * NUM_CLASSES
    labels = pred.pred_instances.labels
    assert int(labels.max()) < NUM_CLASSES and labels.dtype == torch.int64


def test_panoptic_map_encoding():
    torch.manual_seed(1)
    model = tiny_segmentor(panoptic_on=True, thing_class_ids=THINGS,
                           object_mask_threshold=0.0).eval()
    with torch.no_grad():
        pan = model(torch.randn(1, 3, 32, 32), mode='predict')[0].pred_panoptic_seg.sem_seg
    labels, instance_ids = pan % INSTANCE_OFFSET, pan // INSTANCE_OFFSET
    assert int(labels.max()) <= NUM_CLASSES  # NUM_CLASSES marks void
    stuff = (labels != NUM_CLASSES) & ~torch.isin(labels, torch.tensor(THINGS))
    assert not bool(instance_ids[stuff].any())  # stuff has instance id 0


def test_channels_last_gives_the_same_outputs_and_checkpoint_layout():
    torch.manual_seed(0)
    plain = tiny_segmentor().eval()
    fast = tiny_segmentor(channels_last=True).eval()
    fast.load_state_dict(plain.state_dict())
    conv = fast.backbone.conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    for key, value in fast.state_dict().items():
        assert value.shape == plain.state_dict()[key].shape, key
    inputs = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        expected = plain(inputs, mode='tensor')
        got = fast(inputs, mode='tensor')
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    # training works in that layout: finite loss and gradients on the backbone
    fast.train()
    sample = SegDataSample(metainfo=dict(img_shape=(64, 96), batch_input_shape=(64, 96)))
    from mmengine.structures import InstanceData
    masks = torch.zeros(2, 64, 96, dtype=torch.bool)
    masks[0, :32] = True
    masks[1, 32:] = True
    sample.gt_instances = InstanceData(labels=torch.tensor([1, 2]), masks=masks)
    losses = fast(inputs[:1], [sample], mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    assert torch.isfinite(total) and fast.backbone.conv1.weight.grad.abs().sum() > 0


def test_inference_path_equals_the_training_forward():
    """predict's fast paths (gather deformable attention, intermediate masks at the
    attention size, channels-last post-processing) against the full forward in float64."""
    torch.manual_seed(0)
    model = tiny_segmentor().double().eval()
    inputs = torch.randn(1, 3, 64, 96, dtype=torch.float64)
    with torch.no_grad():
        cls_fast, mask_fast = model(inputs, mode='tensor')
        pred = model(inputs, mode='predict')[0]
    # the reference: every prediction at full resolution, grid_sample deformable attention
    inputs.requires_grad_(True)
    cls_preds, mask_preds = model.decode_head(model.extract_feat(inputs))
    torch.testing.assert_close(cls_fast, cls_preds[-1].detach(), rtol=0, atol=1e-10)
    torch.testing.assert_close(mask_fast, mask_preds[-1].detach(), rtol=0, atol=1e-10)
    masks = F.interpolate(mask_preds[-1].detach(), size=(64, 96), mode='bilinear',
                          align_corners=False)[0]
    probs = cls_preds[-1].detach()[0].softmax(-1)[:, :-1]
    scores = torch.einsum('qc,qhw->chw', probs, masks.sigmoid())
    torch.testing.assert_close(pred.seg_logits.data, scores.float(), rtol=0, atol=1e-6)
    assert torch.equal(pred.pred_sem_seg.data[0], scores.argmax(0))
