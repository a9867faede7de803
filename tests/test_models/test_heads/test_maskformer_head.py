"""Tests of MaskFormerDecodeHead (MaskFormer v1) with a stub pixel decoder."""
from typing import List, NamedTuple, Optional, Sequence

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from mmseg.structures import SegDataSample
from torch import Tensor, nn

from mmseg_maskformer.models.heads import MaskFormerDecodeHead
from mmseg_maskformer.registry import MODELS

B, K, Q = 2, 4, 6
IN_CHANNELS = [8, 16, 32, 64]
FEAT, MASK = 16, 12
IMG = (64, 96)


class PixelDecoderOutput(NamedTuple):
    """Same field names as the toolbox's pixel-decoder output."""
    mask_features: Tensor
    multi_scale_features: List[Tensor]
    transformer_encoder_features: Optional[Tensor]


@MODELS.register_module(name='_StubMaskFormerPixelDecoder', force=True)
class StubPixelDecoder(nn.Module):
    """Test-only pixel decoder: 1x1 convs, optional "encoder" output at 1/32."""

    def __init__(self, in_channels: Sequence[int], feat_channels: int = FEAT,
                 out_channels: int = MASK, with_encoder: bool = False) -> None:
        super().__init__()
        self.in_channels = list(in_channels)
        self.feat_channels = feat_channels
        self.out_channels = out_channels
        self.with_encoder = with_encoder
        self.proj = nn.Conv2d(self.in_channels[-1], feat_channels, 1)
        self.mask_proj = nn.Conv2d(self.in_channels[0], out_channels, 1)

    def forward(self, feats: Sequence[Tensor]) -> PixelDecoderOutput:
        coarse = self.proj(feats[-1])
        up = F.interpolate(coarse, size=feats[0].shape[-2:], mode='nearest')
        mask_features = self.mask_proj(feats[0]) + up.mean(1, keepdim=True)
        return PixelDecoderOutput(mask_features, [coarse],
                                  coarse if self.with_encoder else None)


def _feats(seed: int = 0, channels: Sequence[int] = IN_CHANNELS) -> List[Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(B, c, IMG[0] // s, IMG[1] // s, generator=gen)
            for c, s in zip(channels, (4, 8, 16, 32))]


def _head(transformer_in_feature: str = 'res5', with_encoder: bool = False,
          **kwargs) -> MaskFormerDecodeHead:
    init_default_scope('mmseg_maskformer')
    torch.manual_seed(0)
    cfg = dict(type='MaskFormerDecodeHead', num_classes=K, in_channels=IN_CHANNELS,
               pixel_decoder=dict(type='_StubMaskFormerPixelDecoder', with_encoder=with_encoder),
               transformer_decoder=dict(embed_dims=16, num_queries=Q, num_heads=2,
                                        feedforward_dims=32),
               transformer_in_feature=transformer_in_feature)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _sample(num_masks: int, seed: int) -> SegDataSample:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randperm(K, generator=gen)[:num_masks]
    masks = torch.rand(num_masks, *IMG, generator=gen) > 0.5
    return SegDataSample(gt_instances=InstanceData(labels=labels, masks=masks))


# -------------------------------------------------------------- build / defaults
def test_v1_loss_defaults():
    head = _head()
    crit, matcher = head.criterion, head.criterion.matcher
    assert (crit.cls_weight, crit.mask_weight, crit.dice_weight) == (1.0, 20.0, 1.0)
    assert crit.mask_loss == 'focal' and crit.num_points == 0 and crit.deep_supervision
    assert crit.num_classes == K
    assert crit.empty_weight.tolist() == pytest.approx([1.0] * K + [0.1])
    assert (matcher.cls_weight, matcher.mask_weight, matcher.dice_weight) == (1.0, 20.0, 1.0)
    assert matcher.mask_cost == 'focal' and matcher.num_points == 0
    dec = head.predictor
    assert dec.num_layers == 6 and dec.transformer.decoder.layers[0].dropout.p == 0.1


def _official_v1_cost(cls_logits: Tensor, mask_logits: Tensor, labels: Tensor,
                      gt_masks: Tensor) -> Tensor:
    """Official MaskFormer v1 matcher cost: class 1, focal 20, dice 1 (full masks)."""
    tgt = F.interpolate(gt_masks[:, None].float(), size=mask_logits.shape[-2:],
                        mode='nearest')[:, 0].flatten(1)
    out = mask_logits.flatten(1)
    prob = out.sigmoid()
    pos = (1 - prob)**2 * F.binary_cross_entropy_with_logits(out, torch.ones_like(out),
                                                              reduction='none')
    neg = prob**2 * F.binary_cross_entropy_with_logits(out, torch.zeros_like(out),
                                                       reduction='none')
    focal = (torch.einsum('nc,mc->nm', 0.25 * pos, tgt) +
             torch.einsum('nc,mc->nm', 0.75 * neg, 1 - tgt)) / out.shape[1]
    dice = 1 - (2 * torch.einsum('nc,mc->nm', prob, tgt) + 1) / (
        prob.sum(-1)[:, None] + tgt.sum(-1)[None, :] + 1)
    return 20.0 * focal - cls_logits.softmax(-1)[:, labels] + dice


def test_default_matcher_cost_equals_official_v1():
    head = _head()
    gen = torch.Generator().manual_seed(5)
    cls_logits = torch.randn(Q, K + 1, generator=gen)
    mask_logits = 3 * torch.randn(Q, 16, 24, generator=gen)
    sample = _sample(3, seed=9).gt_instances
    cost = head.criterion.matcher.cost_matrix(cls_logits, mask_logits, sample.labels,
                                              sample.masks)
    torch.testing.assert_close(
        cost, _official_v1_cost(cls_logits, mask_logits, sample.labels, sample.masks))


def test_widths_are_derived():
    head = _head()
    assert head.predictor.in_channels == IN_CHANNELS[-1]  # res5
    assert isinstance(head.predictor.input_proj, nn.Conv2d)
    assert head.predictor.mask_dims == MASK
    enc = _head('transformer_encoder', with_encoder=True)
    assert enc.predictor.in_channels == FEAT
    assert isinstance(enc.predictor.input_proj, nn.Identity)  # FEAT == embed_dims


# ------------------------------------------------------------------ forward
def test_forward_and_predict_shapes():
    head = _head().eval()
    with torch.no_grad():
        cls_preds, mask_preds = head(_feats())
        cls_pred, mask_pred = head.predict(_feats())
    assert len(cls_preds) == 6 and len(mask_preds) == 6
    for cls, mask in zip(cls_preds, mask_preds):
        assert cls.shape == (B, Q, K + 1) and mask.shape == (B, Q, IMG[0] // 4, IMG[1] // 4)
    assert cls_pred.shape == (B, Q, K + 1) and mask_pred.shape == (B, Q, 16, 24)
    torch.testing.assert_close(cls_pred, cls_preds[-1])
    torch.testing.assert_close(mask_pred, mask_preds[-1])


def _memory_seen_by_predictor(head: MaskFormerDecodeHead, feats: List[Tensor]) -> Tensor:
    seen = []
    handle = head.predictor.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    with torch.no_grad():
        head(feats)
    handle.remove()
    return seen[0]


@pytest.mark.parametrize('name', ['res5', 'transformer_encoder', 'multi_scale_pixel_decoder'])
def test_transformer_input_selection(name):
    head = _head(name, with_encoder=True).eval()
    feats = _feats()
    memory = _memory_seen_by_predictor(head, feats)
    if name == 'res5':
        assert memory is feats[-1]
    else:
        with torch.no_grad():
            expected = head.pixel_decoder.proj(feats[-1])
        assert memory.shape == (B, FEAT, IMG[0] // 32, IMG[1] // 32)
        torch.testing.assert_close(memory, expected)


def test_missing_transformer_encoder_features_is_a_clear_error():
    head = _head('transformer_encoder', with_encoder=False)
    with pytest.raises(RuntimeError, match='TransformerEncoderPixelDecoder'):
        head(_feats())


def test_in_index_selects_and_orders_backbone_outputs():
    head = _head(in_index=[3, 2, 1, 0]).eval()
    feats = _feats()
    reference = _head().eval()
    with torch.no_grad():
        cls_a, mask_a = head.predict(feats[::-1])
        cls_b, mask_b = reference.predict(feats)
    torch.testing.assert_close(cls_a, cls_b)
    torch.testing.assert_close(mask_a, mask_b)


# ------------------------------------------------------------------- errors
@pytest.mark.parametrize('kwargs, error, message', [
    (dict(transformer_in_feature='res4'), ValueError, 'transformer_in_feature must be'),
    (dict(in_index=[0, 1]), ValueError, 'in_index'),
    (dict(transformer_decoder=dict(in_channels=32)), ValueError,
     r"transformer_decoder.in_channels=32 does not match the channels of the 'res5'"),
    (dict(transformer_decoder=dict(mask_dims=7)), ValueError, 'pixel decoder out_channels'),
    (dict(transformer_decoder=dict(num_classes=K + 1)), ValueError, 'num_classes'),
    (dict(transformer_decoder=dict(embed_dims=15)), ValueError, 'divisible'),
    (dict(criterion=dict(type='MaskFormerCriterion', num_classes=K + 1,
                         matcher=dict(type='HungarianPointMatcher'))), ValueError,
     'criterion.num_classes'),
    (dict(pixel_decoder=dict(type='_StubMaskFormerPixelDecoder', in_channels=[8, 16, 32, 65])),
     ValueError, 'pixel_decoder.in_channels'),
])
def test_build_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        _head(**kwargs)


def test_forward_errors():
    head = _head()
    with pytest.raises(ValueError, match=r'channels \[8, 16, 32\] but in_channels'):
        head(_feats()[:3])
    with pytest.raises(ValueError, match=r'channels \[8, 16, 32, 63\]'):
        head(_feats()[:3] + [torch.randn(B, 63, 2, 3)])
    # a pixel decoder whose mask features disagree with the decoder's mask_dims
    head.pixel_decoder.mask_proj = nn.Conv2d(IN_CHANNELS[0], MASK + 1, 1)
    with pytest.raises(ValueError, match=f'mask features of shape \\(B, {MASK}'):
        head(_feats())


# --------------------------------------------------------------------- loss
def _check_loss_and_grads(head: MaskFormerDecodeHead, samples: List[SegDataSample]) -> None:
    losses = head.loss(_feats(), samples)
    names = {'loss_cls', 'loss_mask', 'loss_dice'}
    assert set(losses) == names | {f'd{i}.{n}' for i in range(5) for n in names}
    for name, value in losses.items():
        assert value.dim() == 0 and bool(torch.isfinite(value)), name
    sum(losses.values()).backward()
    for name, p in head.named_parameters():
        assert p.grad is not None, f'no gradient reaches {name}'
        assert bool(torch.isfinite(p.grad).all()), name


def test_loss_finite_and_backward_reaches_all_parameters():
    head = _head()
    _check_loss_and_grads(head, [_sample(3, seed=1), _sample(0, seed=2)])  # 2nd: no masks
    # the learning signal really reaches the mask branch and the pixel decoder
    assert head.predictor.mask_embed.layers[0].weight.grad.abs().sum() > 0
    assert head.pixel_decoder.mask_proj.weight.grad.abs().sum() > 0
    assert head.predictor.query_embed.weight.grad.abs().sum() > 0


def test_loss_when_no_image_has_masks():
    head = _head('transformer_encoder', with_encoder=True)
    _check_loss_and_grads(head, [_sample(0, seed=1), _sample(0, seed=2)])


def test_loss_needs_gt_instances():
    with pytest.raises(KeyError, match='gt_instances'):
        _head().loss(_feats(), [SegDataSample(), SegDataSample()])


# ------------------------------------------------ real pixel decoders (if present)
@pytest.mark.parametrize('decoder, feature', [
    (dict(type='FPNPixelDecoder'), 'res5'),
    (dict(type='TransformerEncoderPixelDecoder', num_encoder_layers=1, num_heads=2,
          feedforward_dims=32), 'transformer_encoder'),
])
def test_with_registered_pixel_decoders(decoder, feature):
    init_default_scope('mmseg_maskformer')
    if MODELS.get(decoder['type']) is None:
        pytest.skip(f'{decoder["type"]} is not registered yet')
    head = _head(feature, pixel_decoder=dict(decoder, feat_channels=16, out_channels=16,
                                             num_groups=4))
    _check_loss_and_grads(head, [_sample(2, seed=1), _sample(0, seed=2)])
    with torch.no_grad():
        cls_pred, mask_pred = head.eval().predict(_feats())
    assert cls_pred.shape == (B, Q, K + 1) and mask_pred.shape == (B, Q, 16, 24)


def test_fpn_has_no_transformer_encoder_features():
    init_default_scope('mmseg_maskformer')
    if MODELS.get('FPNPixelDecoder') is None:
        pytest.skip('FPNPixelDecoder is not registered yet')
    head = _head('transformer_encoder',
                 pixel_decoder=dict(type='FPNPixelDecoder', feat_channels=16, out_channels=16,
                                    num_groups=4))
    with pytest.raises(RuntimeError, match='FPNPixelDecoder returns no'):
        head(_feats())


# --------------------------------------------------------- full-size count
def _hand_count_predictor(in_channels: int, num_classes: int) -> int:
    """Official TransformerPredictor at full size, from the layer shapes."""
    c, ffn, q, layers, mask = 256, 2048, 100, 6, 256
    attn = (3 * c * c + 3 * c) + (c * c + c)  # in_proj + out_proj
    layer = 2 * attn + (c * ffn + ffn) + (ffn * c + c) + 3 * 2 * c  # + linear1/2, norm1-3
    return (layers * layer + 2 * c  # decoder layers + final norm
            + q * c  # query_embed
            + (in_channels * c + c if in_channels != c else 0)  # input_proj 1x1
            + c * (num_classes + 1) + num_classes + 1  # class_embed
            + 2 * (c * c + c) + (c * mask + mask))  # mask_embed MLP


def _hand_count_fpn(in_channels: Sequence[int], conv: int = 256, mask: int = 256) -> int:
    """Official BasePixelDecoder (GN, bias-free convs) from the layer shapes."""
    gn = 2 * conv
    count = in_channels[-1] * conv * 9 + gn  # res5: 3x3 output conv only
    for ch in in_channels[:-1]:  # res2-res4: 1x1 lateral + 3x3 output
        count += ch * conv + gn + conv * conv * 9 + gn
    return count + conv * mask * 9 + mask  # mask_features 3x3 with bias


def test_full_size_r50_head_parameter_count():
    """MaskFormer R50 ADE20K head: 10,259,351 predictor + 7,540,480 FPN = 17,799,831.

    With the 23.5M-parameter ResNet-50 trunk this is the paper's 41M.
    """
    r50 = [256, 512, 1024, 2048]
    predictor = _hand_count_predictor(2048, 150)
    assert predictor == 10_259_351
    assert _hand_count_fpn(r50) == 7_540_480
    init_default_scope('mmseg_maskformer')
    head = MODELS.build(dict(
        type='MaskFormerDecodeHead', num_classes=150, in_channels=r50,
        pixel_decoder=dict(type='_StubMaskFormerPixelDecoder', feat_channels=256,
                           out_channels=256)))
    count = sum(p.numel() for p in head.predictor.parameters())
    assert count == predictor
    stub = sum(p.numel() for p in head.pixel_decoder.parameters())
    assert sum(p.numel() for p in head.parameters()) == predictor + stub  # criterion: none
    if MODELS.get('FPNPixelDecoder') is None:
        pytest.skip('FPNPixelDecoder is not registered yet: predictor count checked only')
    full = MODELS.build(dict(type='MaskFormerDecodeHead', num_classes=150, in_channels=r50))
    assert sum(p.numel() for p in full.pixel_decoder.parameters()) == 7_540_480
    assert sum(p.numel() for p in full.parameters()) == 17_799_831
