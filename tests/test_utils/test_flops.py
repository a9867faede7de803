"""FLOP counting: the added handles against hand computations, on tiny modules and models."""
import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.config import ConfigDict
from torch import nn

from mmseg_maskformer.models.layers import MSDeformAttn, ms_deform_attn
from mmseg_maskformer.registry import MODELS
from mmseg_maskformer.utils.flops import (EXTRA_HANDLES, count_flops, module_rows,
                                          ms_deform_attn_flops, traced_ms_deform_attn)

B, Q, C, M, L, P = 2, 7, 16, 2, 2, 3  # batch, queries, width, heads, levels, points
SHAPES = [(4, 5), (2, 3)]  # value levels: S = 26


class DeformWrapper(nn.Module):
    """MSDeformAttn with its fixed level layout, traceable with one tensor input."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = MSDeformAttn(C, L, M, P)

    def forward(self, query: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        shapes = torch.as_tensor(SHAPES)
        start = torch.as_tensor([0, SHAPES[0][0] * SHAPES[0][1]])
        ref = torch.rand(query.shape[0], query.shape[1], L, 2)
        return self.attn(query, ref, value, shapes, start)


def analyzer(module: nn.Module, *inputs: torch.Tensor) -> FlopAnalyzer:
    counter = FlopAnalyzer(module.eval(), inputs)
    counter.set_op_handle(**EXTRA_HANDLES)
    counter.unsupported_ops_warnings(False)
    counter.uncalled_modules_warnings(False)
    return counter


def test_ms_deform_attn_formula_by_hand():
    # 2 images x 7 queries x 2 heads x 2 levels x 3 points, each a 4-channel
    # value interpolated from 4 corners (4 MACs) and weighted (1 MAC) per channel
    assert ms_deform_attn_flops(2, 7, 2, 4, 2, 3) == 2 * 7 * 2 * 2 * 3 * 4 * (4 + 1) == 3360


def test_deformable_attention_handle_counts_sampling_and_projections():
    module = DeformWrapper()
    s = sum(h * w for h, w in SHAPES)
    query, value = torch.randn(B, Q, C), torch.randn(B, s, C)
    with torch.no_grad(), traced_ms_deform_attn():
        counter = analyzer(module, query, value)
        by_op = counter.by_operator()
    sampling = ms_deform_attn_flops(B, Q, M, C // M, L, P)
    linear = B * (s * C * C + Q * C * (M * L * P * 2) + Q * C * (M * L * P) + Q * C * C)
    assert by_op['PythonOp._TracedMSDeformAttnCore'] == sampling
    assert by_op['linear'] == linear
    assert counter.total() == sampling + linear


def test_generic_counter_sees_only_the_interpolation(monkeypatch):
    module = DeformWrapper()
    s = sum(h * w for h, w in SHAPES)

    def by_operator():
        with torch.no_grad():
            return analyzer(module, torch.randn(B, Q, C), torch.randn(B, s, C)).by_operator()

    # the compiled CPU kernel: a Python autograd function, which generic counters skip
    assert 'grid_sampler' not in by_operator()
    module.attn.use_cpu_kernel = False
    # the grid_sample core (what the module runs without the kernel, with gradients)
    monkeypatch.setattr(ms_deform_attn, 'ms_deform_attn_gather', ms_deform_attn.ms_deform_attn_core)
    by_op = by_operator()
    # mmengine's grid_sampler handle: 4 per sampled value, the weighting is missed
    assert by_op['grid_sampler'] == ms_deform_attn_flops(B, Q, M, C // M, L, P) * 4 // 5
    monkeypatch.undo()
    # the gather core (no gradients): an embedding_bag, which generic counters skip
    by_op = by_operator()
    assert 'grid_sampler' not in by_op and 'embedding_bag' not in by_op


def test_traced_core_is_the_same_computation_and_is_restored():
    module = DeformWrapper().eval()
    torch.manual_seed(0)
    query, value = torch.randn(B, Q, C), torch.randn(B, 26, C)
    torch.manual_seed(1)
    expected = module(query, value)
    names = ('ms_deform_attn_core', 'ms_deform_attn_gather', 'ms_deform_attn_cpu')
    originals = [getattr(ms_deform_attn, name) for name in names]
    with traced_ms_deform_attn():
        for name, original in zip(names, originals):
            assert getattr(ms_deform_attn, name) is not original
        torch.manual_seed(1)
        got = module(query, value)
    assert [getattr(ms_deform_attn, name) for name in names] == originals
    torch.testing.assert_close(got, expected)


def test_multihead_attention_counts_projections_and_attention():
    attn = nn.MultiheadAttention(C, 4, batch_first=True)
    lq, lk = 5, 9

    class Cross(nn.Module):

        def __init__(self) -> None:
            super().__init__()
            self.attn = attn

        def forward(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
            return self.attn(q, k, k, need_weights=False)[0]

    with torch.no_grad():
        total = analyzer(Cross(), torch.randn(B, lq, C), torch.randn(B, lk, C)).total()
    projections = B * (lq * C * C + 2 * lk * C * C + lq * C * C)
    attention = B * lq * lk * 2 * C  # Q K^T and A V over all heads
    assert total == projections + attention


def tiny_model() -> nn.Module:
    cfg = ConfigDict(
        type='MaskFormerSegmentor',
        backbone=dict(type='ResNet', depth=18, base_channels=8, stem_channels=8,
                      out_indices=(0, 1, 2, 3)),
        decode_head=dict(
            type='Mask2FormerDecodeHead', num_classes=5, in_channels=[8, 16, 32, 64],
            pixel_decoder=dict(type='MultiScaleDeformablePixelDecoder', feat_channels=32,
                               out_channels=24, num_encoder_layers=2, num_heads=4,
                               feedforward_dims=48, num_groups=8),
            transformer_decoder=dict(embed_dims=32, num_queries=6, num_heads=4, num_layers=3,
                                     feedforward_dims=40),
            criterion=dict(type='MaskFormerCriterion',
                           matcher=dict(type='HungarianPointMatcher', num_points=16),
                           num_points=16)))
    return MODELS.build(cfg).eval()


def test_count_flops_on_a_tiny_mask2former():
    h, w = 64, 96
    report = count_flops(tiny_model(), torch.randn(1, 3, h, w))
    mods = report.by_module
    # a 1x1 conv: out x in x pixels at stride 4
    assert mods['decode_head.pixel_decoder.mask_features'] == 24 * 32 * (h // 4) * (w // 4)
    # linear layers on the 6 queries: the mask MLP at each of the 3 + 1 predictions
    # (each feeds the next attention mask), the classifier only at the last one
    # (the tracer drops intermediate class logits: the output does not use them)
    assert mods['decode_head.predictor.mask_embed'] == 4 * 6 * (32 * 32 * 2 + 32 * 24)
    assert mods['decode_head.predictor.class_embed'] == 1 * 6 * 32 * (5 + 1)
    # deformable sampling: 2 encoder layers, queries = pixels at strides 8, 16, 32
    queries = sum((h // s) * (w // s) for s in (8, 16, 32))
    assert report.deform_sampling == 2 * ms_deform_attn_flops(1, queries, 4, 8, 3, 4)
    # post-processing: upsample 6 masks (4 / pixel) and combine 6 queries x 5 classes
    rows = {name: flops for name, _, flops in module_rows(report)}
    assert rows['post-processing'] == 6 * h * w * 4 + 6 * 5 * h * w
    assert rows['backbone'] + rows['decode_head'] + rows['post-processing'] == report.total
    assert sum(report.by_operator.values()) == report.total


def test_count_flops_without_postprocessing_is_the_network_alone():
    model = tiny_model()
    inputs = torch.randn(1, 3, 32, 32)
    full = count_flops(model, inputs)
    network = count_flops(model, inputs, postprocess=False)
    assert network.total == full.by_module['']
    assert network.params[''] == sum(p.numel() for p in model.parameters())
