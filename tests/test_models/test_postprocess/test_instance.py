"""Tests of instance_inference and masks_to_boxes against per-item loops."""
import math
from typing import Dict, Optional

import pytest
import torch
import torch.nn.functional as F

from mmseg_maskformer.models.postprocess import instance_inference, masks_to_boxes

IS_THING = torch.tensor([True, False, True, False, True, True])
NUM_CLASSES = IS_THING.numel()


def _reference_boxes(masks: torch.Tensor) -> torch.Tensor:
    """mmdet's ``mask2bbox``: one mask at a time."""
    boxes = torch.zeros(masks.shape[0], 4)
    for i, mask in enumerate(masks):
        rows = [r for r in range(mask.shape[0]) if bool(mask[r].any())]
        cols = [c for c in range(mask.shape[1]) if bool(mask[:, c].any())]
        if rows and cols:
            boxes[i] = torch.tensor([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1])
    return boxes


def _reference(cls_logits: torch.Tensor, mask_logits: torch.Tensor, topk: int,
               is_thing: Optional[torch.Tensor], threshold: float) -> Dict[str, torch.Tensor]:
    """Official Mask2Former instance inference, with boxes and a final sort."""
    num_queries, num_classes = cls_logits.shape[0], cls_logits.shape[1] - 1
    scores = F.softmax(cls_logits.float(), dim=-1)[:, :-1]
    labels = torch.arange(num_classes).unsqueeze(0).repeat(num_queries, 1).flatten(0, 1)
    scores_per_image, topk_indices = scores.flatten(0, 1).topk(min(topk, scores.numel()),
                                                               sorted=False)
    labels_per_image = labels[topk_indices]
    topk_indices = topk_indices // num_classes
    mask_pred = mask_logits.float()[topk_indices]
    if is_thing is not None:
        keep = torch.zeros_like(scores_per_image).bool()
        for i, lab in enumerate(labels_per_image):
            keep[i] = bool(is_thing[lab])
        scores_per_image = scores_per_image[keep]
        labels_per_image = labels_per_image[keep]
        mask_pred = mask_pred[keep]
    pred_masks = (mask_pred > threshold).float()
    mask_scores = (mask_pred.sigmoid().flatten(1) * pred_masks.flatten(1)).sum(1) / (
        pred_masks.flatten(1).sum(1) + 1e-6)
    final = scores_per_image * mask_scores
    # ties (empty masks score 0) are broken by the class score
    order = sorted(range(final.numel()),
                   key=lambda i: (-float(final[i]), -float(scores_per_image[i])))
    return dict(labels=labels_per_image[order], scores=final[order],
                masks=pred_masks[order].bool(), bboxes=_reference_boxes(pred_masks[order]))


def _random_problem(seed: int, num_queries: int = 20, size=(13, 17)):
    gen = torch.Generator().manual_seed(seed)
    cls_logits = 3 * torch.randn(num_queries, NUM_CLASSES + 1, generator=gen)
    mask_logits = 4 * torch.randn(num_queries, *size, generator=gen)
    mask_logits += 4 * torch.randn(num_queries, 1, 1, generator=gen)
    mask_logits[::4] -= 30  # empty masks
    return cls_logits, mask_logits


def _assert_same(result: Dict[str, torch.Tensor], expected: Dict[str, torch.Tensor]) -> None:
    assert torch.equal(result['labels'], expected['labels'])
    assert torch.allclose(result['scores'], expected['scores'], rtol=1e-5, atol=1e-7)
    assert torch.equal(result['masks'], expected['masks'])
    assert torch.equal(result['bboxes'], expected['bboxes'])


@pytest.mark.parametrize('topk,thing_filter,threshold', [(100, False, 0.0), (100, True, 0.0),
                                                         (30, False, 0.0), (30, True, 1.5),
                                                         (1, False, -2.0)])
def test_matches_official_on_random_inputs(topk, thing_filter, threshold):
    is_thing = IS_THING if thing_filter else None
    empty_masks = 0
    for seed in range(8):
        cls_logits, mask_logits = _random_problem(seed)
        expected = _reference(cls_logits, mask_logits, topk, is_thing, threshold)
        result = instance_inference(cls_logits, mask_logits, topk, is_thing, threshold)
        _assert_same(result, expected)
        empty_masks += int((~result['masks'].flatten(1).any(1)).sum())
    if topk > 1:
        assert empty_masks > 0  # the zero box and 1e-6 guard are exercised


def test_fewer_candidates_than_topk():
    cls_logits, mask_logits = _random_problem(5, num_queries=3)
    result = instance_inference(cls_logits, mask_logits, topk=100)
    assert result['labels'].shape == (3 * NUM_CLASSES, )
    assert sorted(result['labels'].tolist()) == sorted(list(range(NUM_CLASSES)) * 3)
    _assert_same(result, _reference(cls_logits, mask_logits, 100, None, 0.0))


def test_thing_filter_keeps_thing_candidates_of_the_topk():
    cls_logits, mask_logits = _random_problem(11)
    everything = instance_inference(cls_logits, mask_logits, topk=40)
    things = instance_inference(cls_logits, mask_logits, topk=40, is_thing=IS_THING)
    keep = IS_THING[everything['labels']]
    assert 0 < int(keep.sum()) < 40
    assert bool(IS_THING[things['labels']].all())
    assert sorted(things['scores'].tolist()) == sorted(everything['scores'][keep].tolist())


def _logits(probs):
    return torch.tensor([[math.log(p) for p in row] for row in probs])


def test_hand_made_case():
    cls_logits = _logits([[0.6, 0.3, 0.1], [0.25, 0.15, 0.6]])
    mask_logits = torch.full((2, 2, 3), -1.0)
    mask_logits[0, 0, :2] = math.log(3)  # sigmoid 0.75
    mask_logits[1, 1, 2] = math.log(4)  # sigmoid 0.8
    result = instance_inference(cls_logits, mask_logits, topk=3)
    assert result['labels'].tolist() == [0, 1, 0]
    assert result['scores'].tolist() == pytest.approx([0.6 * 0.75, 0.3 * 0.75, 0.25 * 0.8],
                                                      rel=1e-5)
    assert result['bboxes'].tolist() == [[0, 0, 2, 1], [0, 0, 2, 1], [2, 1, 3, 2]]
    assert result['masks'][0].tolist() == [[True, True, False], [False, False, False]]
    assert torch.equal(result['masks'][0], result['masks'][1])
    assert result['masks'][2].tolist() == [[False, False, False], [False, False, True]]

    things = instance_inference(cls_logits, mask_logits, topk=3,
                                is_thing=torch.tensor([False, True]))
    assert things['labels'].tolist() == [1]
    assert things['scores'].tolist() == pytest.approx([0.3 * 0.75], rel=1e-5)

    everything = instance_inference(cls_logits, mask_logits, topk=100)
    assert everything['labels'].tolist() == [0, 1, 0, 1]
    assert everything['scores'][-1].item() == pytest.approx(0.15 * 0.8, rel=1e-5)


def test_output_types_and_empty_result():
    cls_logits, mask_logits = _random_problem(2)
    result = instance_inference(cls_logits, mask_logits, topk=10)
    assert result['labels'].dtype == torch.int64 and result['labels'].shape == (10, )
    assert result['scores'].dtype == torch.float32 and result['scores'].shape == (10, )
    assert result['masks'].dtype == torch.bool and result['masks'].shape == (10, 13, 17)
    assert result['bboxes'].dtype == torch.float32 and result['bboxes'].shape == (10, 4)
    assert bool((result['scores'][:-1] >= result['scores'][1:]).all())

    none = instance_inference(cls_logits, mask_logits, topk=10,
                              is_thing=torch.zeros(NUM_CLASSES, dtype=torch.bool))
    shapes = {key: (tuple(value.shape), value.dtype) for key, value in none.items()}
    assert shapes == dict(labels=((0, ), torch.int64), scores=((0, ), torch.float32),
                          masks=((0, 13, 17), torch.bool), bboxes=((0, 4), torch.float32))


def test_masks_to_boxes_matches_loop():
    gen = torch.Generator().manual_seed(0)
    masks = torch.rand(40, 9, 14, generator=gen) > 0.97
    masks[0] = False
    masks[1] = True
    masks[2, 4, 7] = True
    assert int((~masks.flatten(1).any(1)).sum()) >= 2
    boxes = masks_to_boxes(masks)
    assert boxes.dtype == torch.float32 and boxes.shape == (40, 4)
    assert torch.equal(boxes, _reference_boxes(masks))
    assert boxes[0].tolist() == [0, 0, 0, 0]
    assert boxes[1].tolist() == [0, 0, 14, 9]


def test_masks_to_boxes_hand_made_and_degenerate():
    masks = torch.zeros(2, 5, 6, dtype=torch.bool)
    masks[0, 1:3, 2:5] = True
    masks[1, 4, 0] = True
    masks[1, 0, 5] = True
    assert masks_to_boxes(masks).tolist() == [[2, 1, 5, 3], [0, 0, 6, 5]]
    assert masks_to_boxes(masks[:0]).shape == (0, 4)
    assert masks_to_boxes(torch.zeros(3, 0, 4, dtype=torch.bool)).tolist() == [[0] * 4] * 3
    with pytest.raises(ValueError):
        masks_to_boxes(masks[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_matches_cpu():
    cls_logits, mask_logits = _random_problem(4)
    expected = instance_inference(cls_logits, mask_logits, 50, IS_THING)
    result = instance_inference(cls_logits.cuda(), mask_logits.cuda(), 50, IS_THING.cuda())
    assert all(value.device.type == 'cuda' for value in result.values())
    _assert_same({key: value.cpu() for key, value in result.items()}, expected)
