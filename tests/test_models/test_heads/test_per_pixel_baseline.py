"""Tests of the per-pixel baselines (PerPixelBaselineHead, PerPixelBaselinePlusHead)."""
from typing import Dict, List, Tuple

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData, PixelData
from mmseg.structures import SegDataSample
from torch import Tensor, nn

from mmseg_maskformer.models.decoders import StandardTransformerDecoder
from mmseg_maskformer.models.heads import PerPixelBaselineHead, PerPixelBaselinePlusHead
from mmseg_maskformer.models.heads.per_pixel_baseline import (
    PerPixelTransformerDecoder, instances_to_semantic_map, per_pixel_cross_entropy,
    per_pixel_to_mask_classification)
from mmseg_maskformer.models.pixel_decoders import FPNPixelDecoder
from mmseg_maskformer.models.postprocess import resize_to_original, semantic_inference
from mmseg_maskformer.registry import MODELS

B, K = 2, 5
IN_CHANNELS = [8, 16, 32, 64]
IMG = (64, 96)
TINY_FPN = dict(type='FPNPixelDecoder', feat_channels=16, out_channels=12, num_groups=4)
TINY_DECODER = dict(embed_dims=16, num_heads=2, num_layers=3, feedforward_dims=32)


def _feats(seed: int = 0, batch: int = B) -> List[Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, c, IMG[0] // s, IMG[1] // s, generator=gen)
            for c, s in zip(IN_CHANNELS, (4, 8, 16, 32))]


def _head(plus: bool = False, **kwargs) -> nn.Module:
    init_default_scope('mmseg_maskformer')
    torch.manual_seed(0)
    cfg = dict(type='PerPixelBaselinePlusHead' if plus else 'PerPixelBaselineHead',
               num_classes=K, in_channels=IN_CHANNELS, pixel_decoder=TINY_FPN)
    if plus:
        cfg['transformer_decoder'] = TINY_DECODER
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _seg_map(seed: int, ignore_fraction: float = 0.3) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    seg = torch.randint(0, K, IMG, generator=gen)
    return seg.masked_fill(torch.rand(IMG, generator=gen) < ignore_fraction, 255)


def _sample(seg: Tensor) -> SegDataSample:
    return SegDataSample(gt_sem_seg=PixelData(data=seg[None]))


def _brute_force_ce(logits: Tensor, targets: Tensor) -> Tensor:
    """Official loss written out: upsample x4 (bilinear), mean -log p over labelled pixels."""
    up = F.interpolate(logits.double(), scale_factor=4, mode='bilinear', align_corners=False)
    terms = [-up[b, :, y, x].log_softmax(0)[targets[b, y, x]]
             for b, y, x in (targets != 255).nonzero().tolist()]
    return torch.stack(terms).mean() if terms else up.sum() * 0


def _official_pipeline_argmax(logits: Tensor, img_shape: Tuple[int, int],
                              ori_shape: Tuple[int, int]) -> Tensor:
    """Detectron2 SemanticSegmentor inference: x4 bilinear, crop, resize, argmax."""
    x = F.interpolate(logits[None].double(), scale_factor=4, mode='bilinear',
                      align_corners=False)
    x = x[..., :img_shape[0], :img_shape[1]]
    x = F.interpolate(x, size=ori_shape, mode='bilinear', align_corners=False)
    return x[0].argmax(0)


# ------------------------------------------------------------------ build / shapes
def test_official_defaults():
    head = PerPixelBaselineHead(num_classes=150)
    assert isinstance(head.pixel_decoder, FPNPixelDecoder)
    assert head.ignore_index == 255 and head.loss_weight == 1.0
    plus = PerPixelBaselinePlusHead(num_classes=150)
    dec = plus.predictor
    assert plus.transformer_in_feature == 'res5' and plus.deep_supervision
    assert len(dec.transformer.decoder.layers) == 6 and dec.return_intermediate
    assert dec.transformer.decoder.layers[0].dropout.p == 0.1
    assert dec.query_embed.weight.shape == (150, 256)  # one query per class
    assert not hasattr(dec, 'class_embed')


@pytest.mark.parametrize('plus, num_outputs', [(False, 1), (True, 3)])
def test_forward_and_predict_shapes(plus, num_outputs):
    head = _head(plus).eval()
    with torch.no_grad():
        outputs = head(_feats())
        seg_logits = head.predict_seg_logits(_feats())
        cls_logits, mask_logits = head.predict(_feats())
    assert len(outputs) == num_outputs
    assert all(x.shape == (B, K, IMG[0] // 4, IMG[1] // 4) for x in outputs)
    torch.testing.assert_close(seg_logits, outputs[-1])
    assert cls_logits.shape == (B, K, K + 1) and mask_logits.shape == (B, K, 16, 24)


def test_baseline_is_a_1x1_conv_on_the_mask_features():
    head = _head().eval()
    with torch.no_grad():
        expected = head.predictor(head.pixel_decoder(_feats()).mask_features)
        torch.testing.assert_close(head(_feats())[0], expected)
    assert head.predictor.kernel_size == (1, 1)
    assert torch.equal(head.predictor.bias, torch.zeros(K))  # c2_msra_fill


def test_plus_decoder_equals_maskformer_predictor_without_class_head():
    """Official TransformerPredictor(mask_classification=False) = the v1 predictor's masks."""
    torch.manual_seed(0)
    ours = PerPixelTransformerDecoder(in_channels=64, num_classes=K, mask_dims=12,
                                      **TINY_DECODER).eval()
    v1 = StandardTransformerDecoder(in_channels=64, num_classes=K, num_queries=K, mask_dims=12,
                                    **TINY_DECODER).eval()
    missing, unexpected = v1.load_state_dict(ours.state_dict(), strict=False)
    assert missing == ['class_embed.weight', 'class_embed.bias'] and not unexpected
    memory, mask_features = torch.randn(B, 64, 2, 3), torch.randn(B, 12, 16, 24)
    with torch.no_grad():
        expected = v1(memory, mask_features)[1]
        got = ours(memory, mask_features)
    assert len(got) == len(expected) == 3
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)


def test_transformer_encoder_memory():
    fpn_encoder = dict(type='TransformerEncoderPixelDecoder', feat_channels=16, out_channels=12,
                       num_groups=4, num_encoder_layers=1, num_heads=2, feedforward_dims=32)
    head = _head(True, pixel_decoder=fpn_encoder, transformer_in_feature='transformer_encoder')
    assert head.predictor.in_channels == 16
    assert all(x.shape == (B, K, 16, 24) for x in head(_feats()))
    with pytest.raises(RuntimeError, match='TransformerEncoderPixelDecoder'):
        _head(True, transformer_in_feature='transformer_encoder')(_feats())


def test_in_index_selects_and_orders_backbone_outputs():
    head, reference = _head(in_index=[3, 2, 1, 0]).eval(), _head().eval()
    with torch.no_grad():
        torch.testing.assert_close(head(_feats()[::-1])[0], reference(_feats())[0])


@pytest.mark.parametrize('kwargs, message', [
    (dict(transformer_decoder=dict(TINY_DECODER, num_queries=4)), 'one query per class'),
    (dict(transformer_decoder=dict(TINY_DECODER, mask_dims=7)), 'mask_dims=7'),
    (dict(transformer_decoder=dict(TINY_DECODER, num_classes=K + 1)), 'num_classes'),
    (dict(transformer_decoder=dict(TINY_DECODER, return_intermediate=False)),
     'return_intermediate'),
    (dict(transformer_in_feature='res4'), 'transformer_in_feature must be'),
    (dict(in_index=[0, 1]), 'in_index'),
])
def test_build_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _head(True, **kwargs)


def test_forward_checks_input_channels():
    with pytest.raises(ValueError, match=r'channels \[8, 16, 32\] but in_channels'):
        _head()(_feats()[:3])


# --------------------------------------------------------------------------- loss
def test_cross_entropy_equals_brute_force_with_ignored_pixels():
    gen = torch.Generator().manual_seed(3)
    logits = 3 * torch.randn(B, K, 16, 24, generator=gen)
    targets = torch.stack([_seg_map(1), _seg_map(2)])
    torch.testing.assert_close(per_pixel_cross_entropy(logits, targets).double(),
                               _brute_force_ce(logits, targets))


def test_cross_entropy_of_an_all_ignored_batch_is_zero_and_differentiable():
    logits = torch.randn(B, K, 16, 24, requires_grad=True)
    loss = per_pixel_cross_entropy(logits, torch.full((B, *IMG), 255))
    loss.backward()
    assert loss.item() == 0 and torch.equal(logits.grad, torch.zeros_like(logits))


@pytest.mark.parametrize('plus', [False, True])
def test_loss_equals_brute_force_per_output(plus):
    head = _head(plus)
    seg = [_seg_map(1), _seg_map(2)]
    torch.manual_seed(7)
    losses = head.loss(_feats(), [_sample(s) for s in seg])
    torch.manual_seed(7)  # same dropout masks
    outputs = head(_feats())
    names = ['d0.loss_ce', 'd1.loss_ce', 'loss_ce'] if plus else ['loss_ce']
    assert list(losses) == names
    for name, logits in zip(names, outputs):
        torch.testing.assert_close(losses[name].double(),
                                   _brute_force_ce(logits.detach(), torch.stack(seg)))


def test_an_all_ignored_image_contributes_nothing():
    head = _head().eval()
    seg = _seg_map(1)
    both = head.loss(_feats(), [_sample(seg), _sample(torch.full(IMG, 255))])['loss_ce']
    logits = head(_feats())[0]
    torch.testing.assert_close(both.double(), _brute_force_ce(logits[:1].detach(), seg[None]))


@pytest.mark.parametrize('plus', [False, True])
def test_loss_finite_and_backward_reaches_all_parameters(plus):
    # no attention dropout (it breaks the symmetry below); biases off their zero init
    head = _head(plus, **(dict(transformer_decoder=dict(TINY_DECODER, dropout=0.0)) if plus
                          else {}))
    with torch.no_grad():
        for p in head.parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
    losses = head.loss(_feats(), [_sample(_seg_map(1)), _sample(torch.full(IMG, 255))])
    assert all(v.dim() == 0 and bool(torch.isfinite(v)) for v in losses.values())
    sum(losses.values()).backward()
    # Two parameters get no gradient, in the official model too. DETR property: decoder
    # layer 0 self-attends over zero query content, so its output is the value bias whatever
    # the input projections. The last mask-embedding bias b adds b . f(pixel) to every
    # class's logit alike, which the softmax of the cross-entropy cancels.
    degenerate = {'predictor.transformer.decoder.layers.0.self_attn.in_proj_weight',
                  'predictor.mask_embed.layers.2.bias'} if plus else set()
    for name, p in head.named_parameters():
        assert p.grad is not None and bool(torch.isfinite(p.grad).all()), name
        reached = bool(p.grad.abs().max() > 1e-5)  # above float round-off
        assert reached != (name in degenerate), name


@pytest.mark.parametrize('plus', [False, True])
def test_loss_when_every_pixel_is_ignored(plus):
    head = _head(plus)
    losses = head.loss(_feats(), [_sample(torch.full(IMG, 255))] * B)
    assert all(v.item() == 0 for v in losses.values())
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in head.parameters())


def test_without_deep_supervision_only_the_last_layer_is_supervised():
    head = _head(True, deep_supervision=False)
    assert not head.predictor.return_intermediate
    assert len(head(_feats())) == 1
    assert list(head.loss(_feats(), [_sample(_seg_map(1))] * B)) == ['loss_ce']


def test_loss_weight_scales_every_output():
    seg = [_sample(_seg_map(1))] * B
    torch.manual_seed(0)
    base = _head(True).eval().loss(_feats(), seg)
    torch.manual_seed(0)
    scaled = _head(True, loss_weight=2.0).eval().loss(_feats(), seg)
    for name in base:
        torch.testing.assert_close(scaled[name], 2 * base[name])


def test_targets_painted_from_gt_instances_equal_gt_sem_seg():
    seg = _seg_map(4)
    labels = seg.unique()[:-1].flip(0)  # drop 255; any order
    instances = InstanceData(labels=labels, masks=seg[None] == labels[:, None, None])
    assert torch.equal(instances_to_semantic_map(instances.labels, instances.masks), seg)
    empty = instances_to_semantic_map(torch.zeros(0, dtype=torch.long),
                                      torch.zeros(0, *IMG, dtype=torch.bool))
    assert torch.equal(empty, torch.full(IMG, 255))
    head = _head().eval()
    from_map = head.loss(_feats(), [_sample(seg)] * B)
    from_instances = head.loss(_feats(), [SegDataSample(gt_instances=instances)] * B)
    torch.testing.assert_close(from_map, from_instances)


def test_loss_target_errors():
    head = _head()
    with pytest.raises(KeyError, match='gt_sem_seg'):
        head.loss(_feats(), [SegDataSample()] * B)
    with pytest.raises(ValueError, match=r'labels \[5\] outside \[0, 5\)'):
        head.loss(_feats(), [_sample(_seg_map(1).masked_fill(_seg_map(2) == 0, K))] * B)


# ------------------------------------------------------------------ prediction
def test_pseudo_queries_reproduce_the_per_pixel_softmax():
    gen = torch.Generator().manual_seed(0)
    logits = 20 * torch.randn(B, K, 16, 24, generator=gen)  # large logits: no saturation
    cls_logits, mask_logits = per_pixel_to_mask_classification(logits)
    assert torch.equal(cls_logits[0].softmax(-1), torch.eye(K, K + 1))
    probs = logits.softmax(1)
    for b in range(B):
        scores = semantic_inference(cls_logits[b], mask_logits[b])
        torch.testing.assert_close(scores, probs[b] / (1 + probs[b]))
        odds = scores / (1 - scores)
        torch.testing.assert_close(odds / odds.sum(0), probs[b])
        assert torch.equal(scores.argmax(0), logits[b].argmax(0))


@pytest.mark.parametrize('img_shape, ori_shape', [((64, 96), (64, 96)), ((60, 90), (45, 67)),
                                                  ((64, 80), (131, 163))])
def test_pseudo_queries_after_resizing_give_the_official_semantic_map(img_shape, ori_shape):
    """Padded input 64x96 -> crop img_shape -> resize to ori_shape, as the segmentor does."""
    gen = torch.Generator().manual_seed(1)
    logits = 8 * torch.randn(K, 16, 24, generator=gen)
    cls_logits, mask_logits = per_pixel_to_mask_classification(logits[None])
    masks = resize_to_original(mask_logits[0], IMG, img_shape, ori_shape)
    scores = semantic_inference(cls_logits[0], masks)
    assert torch.equal(scores.argmax(0), _official_pipeline_argmax(logits, img_shape, ori_shape))
    # the scores are monotone in the softmax of the resized logits at every pixel
    resized = resize_to_original(logits, IMG, img_shape, ori_shape)
    odds = scores.double() / (1 - scores.double())
    torch.testing.assert_close(odds / odds.sum(0), resized.double().softmax(0),
                               rtol=1e-4, atol=1e-6)


def test_segmentor_semantic_map_is_the_argmax_of_the_per_pixel_logits():
    init_default_scope('mmseg_maskformer')
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='MaskFormerSegmentor',
        data_preprocessor=dict(type='MaskFormerDataPreprocessor', size_divisor=32),
        backbone=dict(type='ResNet', depth=18, base_channels=8, stem_channels=8,
                      out_indices=(0, 1, 2, 3)),
        decode_head=dict(type='PerPixelBaselinePlusHead', num_classes=K,
                         in_channels=IN_CHANNELS, pixel_decoder=TINY_FPN,
                         transformer_decoder=TINY_DECODER))).eval()
    inputs = torch.randn(1, 3, *IMG)
    meta = dict(img_shape=(60, 90), ori_shape=(90, 135), batch_input_shape=IMG)
    with torch.no_grad():
        pred = model(inputs, [SegDataSample(metainfo=meta)], mode='predict')[0]
        logits = model.decode_head.predict_seg_logits(model.extract_feat(inputs))[0]
    assert pred.seg_logits.data.shape == (K, 90, 135)
    official = _official_pipeline_argmax(logits, (60, 90), (90, 135))
    differ = pred.pred_sem_seg.data[0] != official
    # float32 rounding may flip only pixels whose two best official logits tie to 1e-5
    x = F.interpolate(logits[None].double(), scale_factor=4, mode='bilinear',
                      align_corners=False)[..., :60, :90]
    top2 = F.interpolate(x, size=(90, 135), mode='bilinear', align_corners=False)[0].topk(
        2, dim=0).values
    near_tie = (top2[0] - top2[1]) < 1e-5
    assert not bool((differ & ~near_tie).any())
    assert int(differ.sum()) <= 3


# --------------------------------------------------------- official names and sizes
def _official_plus_predictor_shapes(num_classes: int, in_channels: int) -> Dict[str, tuple]:
    """``sem_seg_head.predictor.`` of official PerPixelBaseline+ checkpoints.

    TransformerPredictor(mask_classification=False): no ``class_embed``;
    Transformer with ENC_LAYERS=0 and post-norm: no encoder keys.
    """
    c, ffn = 256, 2048
    shapes = {'query_embed.weight': (num_classes, c),
              'input_proj.weight': (c, in_channels, 1, 1), 'input_proj.bias': (c, ),
              'transformer.decoder.norm.weight': (c, ), 'transformer.decoder.norm.bias': (c, )}
    for i in range(6):
        p = f'transformer.decoder.layers.{i}.'
        for attn in ('self_attn', 'multihead_attn'):
            shapes.update({p + attn + '.in_proj_weight': (3 * c, c),
                           p + attn + '.in_proj_bias': (3 * c, ),
                           p + attn + '.out_proj.weight': (c, c),
                           p + attn + '.out_proj.bias': (c, )})
        shapes.update({p + 'linear1.weight': (ffn, c), p + 'linear1.bias': (ffn, ),
                       p + 'linear2.weight': (c, ffn), p + 'linear2.bias': (c, )})
        shapes.update({p + f'norm{j}.{s}': (c, ) for j in (1, 2, 3) for s in ('weight', 'bias')})
    for j in range(3):
        shapes.update({f'mask_embed.layers.{j}.weight': (c, c),
                       f'mask_embed.layers.{j}.bias': (c, )})
    return shapes


def _shapes(module: nn.Module, prefix: str = '') -> Dict[str, tuple]:
    return {prefix + k: tuple(v.shape) for k, v in module.state_dict().items()}


@pytest.mark.parametrize('plus', [False, True])
def test_state_dict_names_equal_the_official_ones(plus):
    r50 = [256, 512, 1024, 2048]
    head = (PerPixelBaselinePlusHead if plus else PerPixelBaselineHead)(num_classes=150)
    expected = _shapes(FPNPixelDecoder(in_channels=r50), 'pixel_decoder.')
    if plus:
        expected.update({'predictor.' + k: v
                         for k, v in _official_plus_predictor_shapes(150, 2048).items()})
    else:
        expected.update({'predictor.weight': (150, 256, 1, 1), 'predictor.bias': (150, )})
    assert _shapes(head) == expected


@pytest.mark.parametrize('plus, count', [(False, 7_579_030), (True, 17_773_824)])
def test_full_size_r50_head_parameter_count(plus, count):
    """FPN 7,540,480 + 1x1 conv 38,550, or + the class-query decoder 10,233,344."""
    head = (PerPixelBaselinePlusHead if plus else PerPixelBaselineHead)(num_classes=150)
    assert sum(p.numel() for p in head.parameters()) == count


def test_batch_independence_of_predictions():
    head = _head(True).eval()
    feats = _feats(batch=2)
    with torch.no_grad():
        both = head.predict_seg_logits(feats)
        first = head.predict_seg_logits([f[:1] for f in feats])
    assert both.shape == (2, K, 16, 24) and first.shape == (1, K, 16, 24)
    torch.testing.assert_close(both[:1], first)
