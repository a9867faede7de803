"""Semantic post-processing against the official formulation (einsum, NCHW resizing)."""
import pytest
import torch
import torch.nn.functional as F

from mmseg_maskformer.models.postprocess import (resize_to_original, semantic_inference,
                                                 semantic_labels)


def official_resize(mask_logits, batch_input_shape, img_shape, ori_shape):
    """detectron2's ``sem_seg_postprocess`` after the upsampling to the padded input."""
    x = F.interpolate(mask_logits[None], size=batch_input_shape, mode='bilinear',
                      align_corners=False)
    x = x[..., :img_shape[0], :img_shape[1]]
    return F.interpolate(x, size=ori_shape, mode='bilinear', align_corners=False)[0]


def official_semantic(cls_logits, mask_logits):
    """Mask2Former's ``semantic_inference``."""
    probs = F.softmax(cls_logits, dim=-1)[..., :-1]
    return torch.einsum('qc,qhw->chw', probs, mask_logits.sigmoid())


@pytest.mark.parametrize('shapes', [
    ((64, 96), (64, 96), (64, 96)),  # no padding, no resizing (the benchmark's case)
    ((64, 96), (60, 90), (60, 90)),  # padded only
    ((64, 96), (60, 90), (45, 67)),  # padded and resized
    ((32, 32), (32, 32), (48, 40)),  # enlarged
])
def test_resize_matches_nchw_reference(shapes):
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 16, 24, generator=gen) * 4
    out = resize_to_original(logits, *shapes)
    ref = official_resize(logits, *shapes)
    assert out.shape == ref.shape == (7, *shapes[2])
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)


def _logits(layout: str, seed: int):
    """Class logits (10, 6) and mask logits (10, h, w) in the given memory layout."""
    gen = torch.Generator().manual_seed(seed)
    cls_logits = torch.randn(10, 6, generator=gen) * 3
    masks = torch.randn(10, 20, 30, generator=gen) * 5
    if layout == 'channels_last':
        masks = masks[None].contiguous(memory_format=torch.channels_last)[0]
    elif layout == 'cropped':
        masks = resize_to_original(masks, (40, 60), (33, 47), (33, 47))
    return cls_logits, masks


@pytest.mark.parametrize('layout', ['contiguous', 'channels_last', 'cropped'])
def test_scores_and_labels_match_official(layout):
    cls_logits, masks = _logits(layout, seed=1)
    scores = semantic_inference(cls_logits, masks)
    ref = official_semantic(cls_logits, masks)
    assert scores.shape == ref.shape == (5, *masks.shape[1:])
    torch.testing.assert_close(scores, ref, rtol=0, atol=1e-5)
    labels = semantic_labels(scores)
    assert labels.shape == (1, *masks.shape[1:]) and labels.dtype == torch.long
    assert torch.equal(labels[0], ref.argmax(0))


def test_labels_take_the_first_class_on_ties():
    scores = torch.zeros(4, 3, 5)
    scores[2, 0, 0] = scores[3, 0, 0] = 1.0  # classes 2 and 3 tie at one pixel
    scores = scores.permute(1, 2, 0).contiguous().permute(2, 0, 1)  # the (H, W, K) layout
    labels = semantic_labels(scores)[0]
    assert labels[0, 0] == 2 and bool((labels.flatten()[1:] == 0).all())


def test_low_precision_inputs_give_fp32_scores():
    gen = torch.Generator().manual_seed(2)
    cls_logits = torch.randn(4, 3, generator=gen)
    masks = torch.randn(4, 5, 6, generator=gen)
    scores = semantic_inference(cls_logits.bfloat16(), masks.bfloat16())
    assert scores.dtype == torch.float32
    ref = official_semantic(cls_logits.bfloat16().float(), masks.bfloat16().float())
    torch.testing.assert_close(scores, ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize('layout', ['contiguous', 'channels_last', 'cropped'])
def test_overwriting_the_masks_gives_the_same_scores(layout):
    cls_logits, masks = _logits(layout, seed=3)
    ref = official_semantic(cls_logits, masks)
    kept = masks.clone()
    scores = semantic_inference(cls_logits, kept)
    assert torch.equal(kept, masks)  # the default leaves the masks alone
    torch.testing.assert_close(semantic_inference(cls_logits, masks, overwrite_masks=True),
                               scores, rtol=0, atol=0)
    torch.testing.assert_close(scores, ref, rtol=0, atol=1e-5)
    if layout == 'channels_last':  # the pixel-major view: the sigmoid went into the masks
        torch.testing.assert_close(masks, kept.sigmoid(), rtol=0, atol=0)
