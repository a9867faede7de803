"""Hugging Face checkpoints converted with ``convert_huggingface`` reproduce the
``transformers`` models: logits, and the image processors' post-processing.

Tiny random ``transformers`` models (every weight perturbed, see
``hf_reference``) are converted; our model, built from the config that
``config_from_huggingface`` writes, must load them strictly and give the same
class and mask logits (1e-4) on a non-square batch, and the same semantic,
panoptic and instance results as ``post_process_*_segmentation``.

Resolution conventions: ``Mask2FormerImageProcessor`` always upsamples the
mask logits (bilinear) to 384 x 384 before post-processing, and
``MaskFormerImageProcessor`` works at the mask resolution (1/4 of the input)
when no ``target_sizes`` are given. Our ``predict`` resizes the mask logits
(bilinear) to each sample's ``batch_input_shape`` and ``ori_shape``; the tests
give the samples those sizes so that both sides post-process the same maps.
"""
import importlib.util
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import torch
from mmengine.config import Config
from mmseg.structures import SegDataSample
from safetensors.torch import load_file, save_file
from transformers import Mask2FormerImageProcessor, MaskFormerImageProcessor

sys.path.insert(0, str(Path(__file__).parent))
import hf_reference as ref  # noqa: E402

from mmseg_maskformer.converters.common import compare_with_model  # noqa: E402
from mmseg_maskformer.converters.huggingface import convert_huggingface, to_hub_layout  # noqa
from mmseg_maskformer.converters.huggingface_config import config_from_huggingface  # noqa
from mmseg_maskformer.registry import MODELS  # noqa: E402
from mmseg_maskformer.utils.panoptic import INSTANCE_OFFSET  # noqa: E402

TOL = 1e-4
TOOL = Path(__file__).resolve().parents[2] / 'tools' / 'model_converters' / \
    'hf2mmseg_maskformer.py'
THINGS = [1, 3, 5]  # the other classes are stuff (fused per class on both sides)
CASES = {
    'mask2former_swin': lambda: ref.mask2former_config(ref.swin_backbone()),
    'mask2former_r50': lambda: ref.mask2former_config(ref.resnet_config()),
    'maskformer_swin': lambda: ref.maskformer_config(ref.maskformer_swin_backbone()),
    'maskformer_r50': lambda: ref.maskformer_config(ref.resnet_config()),
}


def _inputs() -> torch.Tensor:
    """A normalised non-square batch, (2, 3, 96, 128)."""
    return torch.randn(2, 3, 96, 128, generator=torch.Generator().manual_seed(7))


def _convert(hf_model: torch.nn.Module, **test_cfg) -> torch.nn.Module:
    """Our model from the written config (``test_cfg`` updated), with the converted weights."""
    hf_config = hf_model.config.to_dict()
    result = convert_huggingface(hf_model.state_dict(), hf_config)
    assert result.unmatched == []
    cfg = Config.fromstring(config_from_huggingface(hf_config), '.py')
    cfg.model.test_cfg.update(test_cfg)
    model = MODELS.build(cfg.model)
    assert compare_with_model(result.state_dict, model) == dict(missing=[], unexpected=[],
                                                                shape_mismatch=[])
    missing, unexpected = model.load_state_dict(result.state_dict, strict=False)
    # buffers the model rebuilds itself (same values) are not in the file
    assert unexpected == [] and all('relative_position_index' in key for key in missing)
    return model.eval()


@pytest.mark.parametrize('case', sorted(CASES))
def test_logits_match(case):
    hf_model = ref.build(CASES[case]())
    ours = _convert(hf_model)
    x = _inputs()
    with torch.no_grad():
        expected = hf_model(pixel_values=x)
        cls_logits, mask_logits = ours(x, mode='tensor')
    assert mask_logits.shape == expected.masks_queries_logits.shape == (2, 6, 24, 32)
    assert (cls_logits - expected.class_queries_logits).abs().max() < TOL
    assert (mask_logits - expected.masks_queries_logits).abs().max() < TOL
    assert mask_logits.std() > 1e-2  # not a degenerate, constant output


def test_hub_layout_keys_convert_the_same():
    """Files on the Hub use the pre-5.0 names (``attention.self.query``,
    ``intermediate.dense``, ``out_proj``, ``layers.{i}.fc1``)."""
    hf_model = ref.build(CASES['maskformer_swin']())
    in_memory = convert_huggingface(hf_model.state_dict(), hf_model.config.to_dict())
    hub = to_hub_layout(hf_model.state_dict())
    assert any('attention.self.query' in k for k in hub)
    assert any('self_attn.out_proj' in k for k in hub)
    from_hub = convert_huggingface(hub, hf_model.config.to_dict())
    assert from_hub.state_dict.keys() == in_memory.state_dict.keys()
    assert all(torch.equal(from_hub.state_dict[k], v) for k, v in in_memory.state_dict.items())


# ------------------------------------------------------------------- post-processing


def _confident(hf_model: torch.nn.Module) -> torch.nn.Module:
    """Diverse, confident queries, so that the thresholds select several segments.

    Random unit-variance query embeddings, sharper cross-attention (x4), class
    logits x20 and mask logits x10.
    """
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, param in hf_model.named_parameters():
            if '.queries_' in name:
                param.copy_(torch.randn(param.shape, generator=gen))
            elif name.endswith(('cross_attn.in_proj_weight', 'encoder_attn.q_proj.weight',
                                'encoder_attn.k_proj.weight')):
                param.mul_(4.0)
            elif 'mask_embedder.2.0' in name:
                param.mul_(10.0)
        hf_model.class_predictor.weight.mul_(20.0)
    return hf_model


def _predict(model: torch.nn.Module, x: torch.Tensor, shape: Tuple[int, int],
             **test_cfg) -> List[SegDataSample]:
    """Our ``predict`` with every sample's metainfo shapes set to ``shape``."""
    model.test_cfg.update(test_cfg)
    samples = [SegDataSample(metainfo=dict(img_shape=shape, ori_shape=shape,
                                           batch_input_shape=shape)) for _ in range(len(x))]
    with torch.no_grad():
        return model(x, samples, mode='predict')


def _assert_same_partition(ours: torch.Tensor, theirs: torch.Tensor, labels: Dict[int, int],
                           void: int) -> None:
    """Segments of our panoptic map equal Hugging Face's up to renumbering.

    Conventions that differ (official rule = ours): Hugging Face paints every
    pixel a kept query wins (argmax of ``score * prob``), the official rule only
    those where the winner's own probability is at least 0.5 (the others are
    void), so the maps are compared where ours is not void; and Hugging Face
    measures a query's own area on ``score * prob >= 0.5`` instead of
    ``prob >= 0.5`` (and keeps ratios strictly above the overlap threshold), so
    the tests use ``overlap_threshold = 0`` on both sides.
    """
    assigned = ours != void
    assert assigned.any()
    pairs, counts = torch.stack([ours[assigned], theirs[assigned].long()], 1).unique(
        dim=0, return_counts=True)
    # each of our segments goes with the Hugging Face segment holding most of it
    mapping = {}
    for (our_id, their_id), count in zip(pairs.tolist(), counts.tolist()):
        if count > mapping.get(our_id, (None, -1))[1]:
            mapping[our_id] = (their_id, count)
    matched = {our_id: their_id for our_id, (their_id, _) in mapping.items()}
    assert len(set(matched.values())) == len(matched)  # a bijection
    for our_id, their_id in matched.items():
        assert our_id % INSTANCE_OFFSET == labels[their_id]
    # pixels where two queries tie within float rounding (logits agree to ~1e-7)
    agree = sum(count for (o, t), count in zip(pairs.tolist(), counts.tolist())
                if matched[o] == t)
    assert int(assigned.sum()) - agree <= 1e-4 * ours.numel()
    assert len(matched) >= 2  # a meaningful partition


def test_mask2former_postprocessing_matches_image_processor():
    hf_model = _confident(ref.build(CASES['mask2former_swin']()))
    ours = _convert(hf_model, thing_class_ids=THINGS)
    x, processor, shape = _inputs(), Mask2FormerImageProcessor(), (384, 384)
    with torch.no_grad():
        outputs = hf_model(pixel_values=x)
    samples = _predict(ours, x, shape, semantic_on=True, panoptic_on=True, instance_on=False,
                       object_mask_threshold=0.5, overlap_threshold=0.0)
    semantic = processor.post_process_semantic_segmentation(outputs)
    panoptic = processor.post_process_panoptic_segmentation(
        outputs, threshold=0.5, mask_threshold=0.5, overlap_mask_area_threshold=0.0,
        label_ids_to_fuse=set(range(ref.NUM_LABELS)) - set(THINGS))
    for sample, sem, pan in zip(samples, semantic, panoptic):
        assert torch.equal(sample.pred_sem_seg.data[0], sem)
        labels = {s['id']: s['label_id'] for s in pan['segments_info']}
        _assert_same_partition(sample.pred_panoptic_seg.sem_seg[0], pan['segmentation'], labels,
                               void=ref.NUM_LABELS)
    _check_instances(ours, outputs, processor, x, shape)


def test_maskformer_postprocessing_matches_image_processor():
    """MaskFormer's queries collapse in a tiny random DETR decoder (zero initial
    content, near-uniform attention), so its own outputs give constant maps.
    The logits equal Hugging Face's (``test_logits_match``); here both sides
    post-process the same diverse logits (random classes, confident random
    masks at 1/4 of the input) through the converted model's ``predict`` and
    ``MaskFormerImageProcessor``: semantic maps, panoptic segments and
    instances must agree."""
    hf_model = ref.build(CASES['maskformer_swin']())
    ours = _convert(hf_model, thing_class_ids=THINGS)
    x, processor, shape = _inputs(), MaskFormerImageProcessor(), (24, 32)
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():
        outputs = hf_model(pixel_values=x)
    num_queries = outputs.class_queries_logits.shape[1]
    cls = 6.0 * torch.randn(2, num_queries, ref.NUM_LABELS + 1, generator=gen)
    masks = 8.0 * torch.randn(2, num_queries, 6, 8, generator=gen)
    masks = torch.nn.functional.interpolate(masks, size=shape, mode='bilinear')
    outputs.class_queries_logits, outputs.masks_queries_logits = cls, masks
    ours._forward = lambda inputs, data_samples=None: (cls, masks)
    samples = _predict(ours, x, shape, semantic_on=True, panoptic_on=True, instance_on=False,
                       object_mask_threshold=0.5, overlap_threshold=0.0)
    semantic = processor.post_process_semantic_segmentation(outputs)
    panoptic = processor.post_process_panoptic_segmentation(
        outputs, threshold=0.5, mask_threshold=0.5, overlap_mask_area_threshold=0.0,
        label_ids_to_fuse=set(range(ref.NUM_LABELS)) - set(THINGS))
    for sample, sem, pan in zip(samples, semantic, panoptic):
        assert len(sem.unique()) > 2  # a real map, not a constant
        assert torch.equal(sample.pred_sem_seg.data[0], sem)
        labels = {s['id']: s['label_id'] for s in pan['segments_info']}
        assert len(labels) >= 3
        _assert_same_partition(sample.pred_panoptic_seg.sem_seg[0], pan['segmentation'], labels,
                               void=ref.NUM_LABELS)
    _check_instances(ours, outputs, processor, x, shape)


def _check_instances(ours: torch.nn.Module, outputs, processor, x: torch.Tensor,
                     shape: Tuple[int, int], threshold: float = 0.3) -> None:
    """Instances (top Q of Q x K candidates, score >= threshold, non-empty) match.

    Hugging Face keeps the ``num_queries`` best candidates unsorted; ours the
    ``max_per_image`` best sorted by score: both are sorted here.
    """
    num_queries = outputs.class_queries_logits.shape[1]
    samples = _predict(ours, x, shape, semantic_on=False, panoptic_on=False, instance_on=True,
                       max_per_image=num_queries)
    results = processor.post_process_instance_segmentation(outputs, threshold=threshold,
                                                           return_binary_maps=True)
    for sample, result in zip(samples, results):
        inst = sample.pred_instances
        keep = (inst.scores >= threshold) & inst.masks.flatten(1).any(1)
        infos = result['segments_info']
        assert int(keep.sum()) == len(infos) >= 1
        order = sorted(range(len(infos)), key=lambda i: -infos[i]['score'])
        theirs_scores = torch.tensor([infos[i]['score'] for i in order])
        assert torch.allclose(inst.scores[keep], theirs_scores, atol=2e-6)
        assert inst.labels[keep].tolist() == [infos[i]['label_id'] for i in order]
        masks = result['segmentation'][order].bool()
        # binary masks threshold logits at 0: pixels within float rounding may flip
        assert (inst.masks[keep] != masks).float().mean() <= 1e-4


# ----------------------------------------------------------------------------- CLI


def _load_tool():
    spec = importlib.util.spec_from_file_location('hf2mmseg_maskformer', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_converts_a_saved_model(tmp_path, capsys):
    hf_model = ref.build(CASES['mask2former_swin']())
    hf_dir = tmp_path / 'hf'
    hf_model.save_pretrained(hf_dir)
    tool = _load_tool()
    out, out_cfg = tmp_path / 'ckpt.pth', tmp_path / 'cfg.py'
    assert tool.main([str(hf_dir), str(out), '--out-config', str(out_cfg)]) == 0
    assert '0 unmatched' in capsys.readouterr().out
    ours = MODELS.build(Config.fromfile(str(out_cfg)).model).eval()
    checkpoint = torch.load(out, weights_only=True)
    assert checkpoint['meta']['dataset_meta']['classes'][0] == 'class_0'
    missing, unexpected = ours.load_state_dict(checkpoint['state_dict'], strict=False)
    assert unexpected == [] and all('relative_position_index' in key for key in missing)
    x = _inputs()
    with torch.no_grad():
        expected = hf_model(pixel_values=x).masks_queries_logits
        assert (ours(x, mode='tensor')[1] - expected).abs().max() < TOL
    # a key of another architecture makes the tool fail
    weights = load_file(str(hf_dir / 'model.safetensors'))
    weights['model.some_new_module.weight'] = torch.zeros(2)
    save_file(weights, str(hf_dir / 'model.safetensors'))
    assert tool.main([str(hf_dir), str(out), '--out-config', str(out_cfg)]) == 1
