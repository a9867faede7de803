"""Tests of panoptic_inference against a literal transcription of the official loop."""
import math
from typing import Dict, List, Tuple

import pytest
import torch
import torch.nn.functional as F

from mmseg_maskformer.models.postprocess import panoptic_inference
from mmseg_maskformer.utils.panoptic import INSTANCE_OFFSET

IS_THING = torch.tensor([True, True, False, False, False])
NUM_CLASSES = IS_THING.numel()
BIG = 12.0  # |mask logit| giving sigmoid ~ 1 / ~ 0


def _reference(cls_logits: torch.Tensor, mask_logits: torch.Tensor, is_thing: torch.Tensor,
               object_mask_threshold: float,
               overlap_threshold: float) -> Tuple[torch.Tensor, List[dict], Dict[str, int]]:
    """Official Mask2Former panoptic loop, painting mmdet-style encoded values.

    Also counts which branches were taken, to check the random inputs cover them.
    """
    events = dict(kept=0, rejected_overlap=0, rejected_empty=0, merged=0, things=0)
    num_classes = cls_logits.shape[1] - 1
    scores, labels = F.softmax(cls_logits.float(), dim=-1).max(-1)
    mask_pred = mask_logits.float().sigmoid()
    keep = labels.ne(num_classes) & (scores > object_mask_threshold)
    cur_scores, cur_classes, cur_masks = scores[keep], labels[keep], mask_pred[keep]
    cur_prob_masks = cur_scores.view(-1, 1, 1) * cur_masks
    panoptic = torch.full(mask_logits.shape[-2:], num_classes, dtype=torch.long)
    segments: List[dict] = []
    if cur_masks.shape[0] == 0:
        return panoptic, segments, events
    cur_mask_ids = cur_prob_masks.argmax(0)
    stuff_memory_list: Dict[int, dict] = {}
    instance_id = 1
    for k in range(cur_classes.shape[0]):
        events['kept'] += 1
        pred_class = int(cur_classes[k].item())
        isthing = bool(is_thing[pred_class])
        mask_area = (cur_mask_ids == k).sum().item()
        original_area = (cur_masks[k] >= 0.5).sum().item()
        mask = (cur_mask_ids == k) & (cur_masks[k] >= 0.5)
        if mask_area > 0 and original_area > 0 and mask.sum().item() > 0:
            if mask_area / original_area < overlap_threshold:
                events['rejected_overlap'] += 1
                continue
            if not isthing:
                if pred_class in stuff_memory_list:
                    events['merged'] += 1
                    panoptic[mask] = stuff_memory_list[pred_class]['id']
                    continue
            if isthing:
                value = pred_class + instance_id * INSTANCE_OFFSET
                instance_id += 1
                events['things'] += 1
            else:
                value = pred_class
            panoptic[mask] = value
            segment = dict(id=value, label=pred_class, isthing=isthing,
                           score=cur_scores[k].item())
            if not isthing:
                stuff_memory_list[pred_class] = segment
            segments.append(segment)
        else:
            events['rejected_empty'] += 1
    for segment in segments:
        segment['area'] = int((panoptic == segment['id']).sum())
    return panoptic, segments, events


def _random_problem(seed: int, num_queries: int = 12, size: int = 16):
    """Confident classes; smooth blob-like masks, overlapping each other in places."""
    gen = torch.Generator().manual_seed(seed)
    cls_logits = torch.randn(num_queries, NUM_CLASSES + 1, generator=gen)
    favourite = torch.randint(0, NUM_CLASSES + 1, (num_queries, ), generator=gen)
    cls_logits[torch.arange(num_queries), favourite] += 5 * torch.rand(num_queries, generator=gen)
    coarse = 6 * torch.randn(num_queries, 1, 6, 6, generator=gen)
    mask_logits = F.interpolate(coarse, size=(size, size), mode='bilinear',
                                align_corners=False)[:, 0]
    mask_logits += 2 * torch.randn(num_queries, 1, 1, generator=gen) - 6
    return cls_logits, mask_logits


def _assert_same(result, expected) -> None:
    panoptic, segments = result
    ref_panoptic, ref_segments = expected[:2]
    assert torch.equal(panoptic, ref_panoptic)
    assert segments == ref_segments


@pytest.mark.parametrize('object_mask_threshold,overlap_threshold', [(0.8, 0.8), (0.3, 0.8),
                                                                     (0.3, 0.5), (0.0, 0.0)])
def test_matches_official_loop_on_random_inputs(object_mask_threshold, overlap_threshold):
    events = dict(kept=0, rejected_overlap=0, rejected_empty=0, merged=0, things=0)
    for seed in range(12):
        cls_logits, mask_logits = _random_problem(seed)
        expected = _reference(cls_logits, mask_logits, IS_THING, object_mask_threshold,
                              overlap_threshold)
        result = panoptic_inference(cls_logits, mask_logits, IS_THING, object_mask_threshold,
                                    overlap_threshold)
        _assert_same(result, expected)
        for name, count in expected[2].items():
            events[name] += count
    # every branch of the loop is exercised
    assert events['things'] > 0 and events['merged'] > 0 and events['rejected_empty'] > 0
    if object_mask_threshold < 0.8 and overlap_threshold > 0:
        assert events['rejected_overlap'] > 0


def test_matches_official_loop_with_many_queries():
    cls_logits, mask_logits = _random_problem(123, num_queries=60, size=24)
    for thresholds in [(0.5, 0.8), (0.5, 0.3)]:
        expected = _reference(cls_logits, mask_logits, IS_THING, *thresholds)
        _assert_same(panoptic_inference(cls_logits, mask_logits, IS_THING, *thresholds),
                     expected)


def _logits(probs: List[List[float]]) -> torch.Tensor:
    return torch.tensor([[math.log(p) for p in row] for row in probs])


def test_hand_made_stuff_merging_and_things():
    # classes: 0 thing, 1 stuff; 1 x 4 image
    is_thing = torch.tensor([True, False])
    cls_logits = _logits([[0.9, 0.05, 0.05],    # thing, column 0
                          [0.05, 0.95, 0.0001],  # stuff, columns 1-2
                          [0.05, 0.9, 0.05],     # same stuff, column 3: merged
                          [0.1, 0.1, 0.8],       # no object
                          [0.5, 0.25, 0.25]])    # score 0.5 <= 0.8: dropped
    mask_logits = torch.full((5, 1, 4), -BIG)
    mask_logits[0, 0, 0] = BIG
    mask_logits[1, 0, 1:3] = BIG
    mask_logits[2, 0, 3] = BIG
    mask_logits[3] = BIG
    mask_logits[4] = BIG
    panoptic, segments = panoptic_inference(cls_logits, mask_logits, is_thing)
    assert panoptic.tolist() == [[0 + 1 * INSTANCE_OFFSET, 1, 1, 1]]
    assert [(s['id'], s['label'], s['isthing'], s['area']) for s in segments] == [
        (INSTANCE_OFFSET, 0, True, 1), (1, 1, False, 3)]
    assert segments[0]['score'] == pytest.approx(0.9, rel=1e-5)
    assert segments[1]['score'] == pytest.approx(0.95 / 1.0001, rel=1e-5)  # first query


def test_hand_made_overlap_rejection():
    # q0 (higher score) wins pixels 0-1; q1 wants all four pixels but wins only half
    is_thing = torch.tensor([True, True])
    cls_logits = torch.tensor([[8.0, 0.0, 0.0], [0.0, 6.0, 0.0]])
    mask_logits = torch.tensor([[[BIG, BIG, -BIG, -BIG]], [[BIG, BIG, BIG, BIG]]])
    panoptic, segments = panoptic_inference(cls_logits, mask_logits, is_thing)
    assert panoptic.tolist() == [[INSTANCE_OFFSET, INSTANCE_OFFSET, 2, 2]]
    assert [(s['id'], s['area']) for s in segments] == [(INSTANCE_OFFSET, 2)]
    panoptic, segments = panoptic_inference(cls_logits, mask_logits, is_thing,
                                            overlap_threshold=0.5)
    second = 1 + 2 * INSTANCE_OFFSET
    assert panoptic.tolist() == [[INSTANCE_OFFSET, INSTANCE_OFFSET, second, second]]
    assert [(s['id'], s['label'], s['area']) for s in segments] == [(INSTANCE_OFFSET, 0, 2),
                                                                      (second, 1, 2)]


def test_won_pixels_below_half_probability_are_void():
    # the only query wins every pixel but its own mask covers only the first one
    cls_logits = torch.tensor([[9.0, 0.0]])
    mask_logits = torch.tensor([[[BIG, -BIG], [-1.0, -BIG]]])
    panoptic, segments = panoptic_inference(cls_logits, mask_logits, torch.tensor([False]))
    assert panoptic.tolist() == [[0, 1], [1, 1]]
    assert segments[0]['id'] == 0 and segments[0]['area'] == 1


@pytest.mark.parametrize('case', ['no_object', 'low_score', 'no_query', 'all_rejected'])
def test_empty_prediction_is_all_void(case):
    cls_logits = torch.tensor([[0.0, 9.0, 0.0], [0.0, 9.0, 0.0]])
    mask_logits = torch.full((2, 3, 5), BIG)
    if case == 'no_object':
        cls_logits = torch.tensor([[0.0, 0.0, 9.0], [0.0, 0.0, 9.0]])
    elif case == 'low_score':
        cls_logits = torch.zeros(2, 3)
    elif case == 'no_query':
        cls_logits, mask_logits = cls_logits[:0], mask_logits[:0]
    elif case == 'all_rejected':
        mask_logits = torch.full((2, 3, 5), -BIG)
    panoptic, segments = panoptic_inference(cls_logits, mask_logits, torch.tensor([True, False]))
    assert segments == []
    assert panoptic.dtype == torch.int64 and panoptic.shape == (3, 5)
    assert bool((panoptic == 2).all())


def test_map_decodes_consistently_with_segments():
    for seed in range(6):
        cls_logits, mask_logits = _random_problem(seed, num_queries=30)
        panoptic, segments = panoptic_inference(cls_logits, mask_logits, IS_THING, 0.3, 0.5)
        assert segments
        labels, instances = panoptic % INSTANCE_OFFSET, panoptic // INSTANCE_OFFSET
        ids = {s['id'] for s in segments}
        assert len(ids) == len(segments)
        assert set(panoptic.unique().tolist()) - {NUM_CLASSES} == ids
        assert bool((instances[labels == NUM_CLASSES] == 0).all())
        thing_instances = []
        for segment in segments:
            region = panoptic == segment['id']
            assert int(region.sum()) == segment['area'] > 0
            assert bool((labels[region] == segment['label']).all())
            assert segment['isthing'] == bool(IS_THING[segment['label']])
            instance = segment['id'] // INSTANCE_OFFSET
            assert (instance > 0) == segment['isthing']
            if segment['isthing']:
                thing_instances.append(instance)
            assert 0.3 < segment['score'] <= 1.0
        assert thing_instances == list(range(1, len(thing_instances) + 1))
        stuff_labels = [s['label'] for s in segments if not s['isthing']]
        assert len(stuff_labels) == len(set(stuff_labels))


def test_half_precision_inputs_match_float():
    cls_logits, mask_logits = _random_problem(7)
    cls_logits, mask_logits = cls_logits.half(), mask_logits.half()
    result = panoptic_inference(cls_logits, mask_logits, IS_THING, 0.3)
    _assert_same(result, panoptic_inference(cls_logits.float(), mask_logits.float(), IS_THING,
                                            0.3))


def test_rejects_bad_inputs():
    cls_logits, mask_logits = _random_problem(0)
    with pytest.raises(ValueError):
        panoptic_inference(cls_logits, mask_logits[:-1], IS_THING)
    with pytest.raises(ValueError):
        panoptic_inference(cls_logits, mask_logits, IS_THING[:-1])
    with pytest.raises(ValueError):
        panoptic_inference(torch.zeros(2, INSTANCE_OFFSET + 1), torch.zeros(2, 3, 3),
                           torch.zeros(INSTANCE_OFFSET, dtype=torch.bool))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_matches_cpu():
    cls_logits, mask_logits = _random_problem(3, num_queries=30)
    mask_logits = mask_logits.round()  # sigmoid values far from ties and from 0.5
    panoptic, segments = panoptic_inference(cls_logits, mask_logits, IS_THING, 0.3, 0.5)
    cuda_panoptic, cuda_segments = panoptic_inference(cls_logits.cuda(), mask_logits.cuda(),
                                                      IS_THING.cuda(), 0.3, 0.5)
    assert cuda_panoptic.device.type == 'cuda' and cuda_panoptic.dtype == torch.int64
    assert torch.equal(cuda_panoptic.cpu(), panoptic)
    assert [{**s, 'score': 0} for s in cuda_segments] == [{**s, 'score': 0} for s in segments]
    assert [s['score'] for s in cuda_segments] == pytest.approx([s['score'] for s in segments])
