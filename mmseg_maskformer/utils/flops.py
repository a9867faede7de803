"""FLOP counting of the MaskFormer-family models (used by ``tools/analysis_tools/get_flops.py``).

Convention (as detectron2's fvcore count, which the MaskFormer and Mask2Former
papers report as GFLOPs): one fused multiply-add is one FLOP; inference of one
batch; only the ops below are counted, element-wise ops (activations,
additions, softmax, the sigmoid and masking of the masked attention) are not.

Counted by mmengine's ``FlopAnalyzer`` (a port of fvcore): convolutions,
linear layers and matrix products (``addmm``, ``bmm``, ``matmul``, ``linear``),
batch/group/layer norm (fvcore's 4-5 per element), bilinear upsampling (4 per
output element), ``grid_sampler`` (4 per output element). Ops the output does
not depend on are dropped by the tracer (Mask2Former's intermediate class
logits at inference), as in detectron2's count. Added or replaced here:

* ``aten::einsum`` (the mask products ``bqc,bchw->bqhw``): exact for two
  operands, the product of all index sizes (mmengine's handle rounds);

* ``aten::scaled_dot_product_attention`` (what ``nn.MultiheadAttention`` calls):
  ``Lq * Lk * (E + Ev)`` per batch and head, i.e. ``Q K^T`` and ``A V``; the
  masked attention of Mask2Former is counted dense, as it runs;
* ``aten::_native_multi_head_attention`` (PyTorch's fused inference path): the
  same plus the input and output projections;
* multi-scale deformable attention (generic counters see only a
  ``grid_sampler`` and miss the weighting): during counting the pure-PyTorch
  core is traced as one op and counted as ``5`` FLOPs per sampled value and
  channel, ``4`` for the bilinear interpolation of the 4 corners and ``1`` for
  the attention weighting: ``5 * B * Q * M * L * P * D`` (see
  :func:`ms_deform_attn_flops`); mmcv's CUDA kernel op is counted the same.

Detectron2's counts of the official code skip the deformable sampling (its
CUDA op, and ``grid_sampler`` which fvcore did not count then):
:attr:`FlopReport.deform_sampling` is given separately for comparisons.
"""
import contextlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple
from unittest import mock

import torch
import torch.nn.functional as F
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.analysis.jit_handles import einsum_flop_jit as mmengine_einsum_flop_jit
from mmengine.analysis.jit_handles import get_shape
from torch import Tensor, nn

from mmseg_maskformer.models.layers import ms_deform_attn

#: Name of the traced deformable-attention op during counting.
MSDA_OP = 'prim::PythonOp._TracedMSDeformAttnCore'
#: mmcv's CUDA op (value, shapes, level_start_index, locations, weights, step).
MMCV_MSDA_OP = 'prim::PythonOp.MultiScaleDeformableAttnFunction'


def ms_deform_attn_flops(batch: int, num_queries: int, num_heads: int, head_dims: int,
                         num_levels: int, num_points: int) -> int:
    """FLOPs of the sampling and weighting of multi-scale deformable attention.

    Each of the ``B * Q * M * L * P`` sampling points interpolates a
    ``D``-channel value bilinearly from 4 corners (4 multiply-adds per
    channel) and adds it with its attention weight (1 multiply-add per
    channel). The linear projections are counted separately.
    """
    return 5 * batch * num_queries * num_heads * num_levels * num_points * head_dims


def _msda_handle(value_index: int, locations_index: int):
    """Handle of a deformable-attention op: value (B, S, M, D), locations (B, Q, M, L, P, 2)."""

    def handle(inputs: List[Any], outputs: List[Any]) -> int:
        b, _, m, d = get_shape(inputs[value_index])
        _, q, _, num_levels, num_points, _ = get_shape(inputs[locations_index])
        return ms_deform_attn_flops(b, q, m, d, num_levels, num_points)

    return handle


def sdpa_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """``scaled_dot_product_attention(q (..., Lq, E), k (..., Lk, E), v (..., Lk, Ev))``."""
    q_shape, k_shape, v_shape = (get_shape(v) for v in inputs[:3])
    batch = 1
    for size in q_shape[:-2]:
        batch *= size
    return batch * q_shape[-2] * k_shape[-2] * (q_shape[-1] + v_shape[-1])


def native_mha_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """``_native_multi_head_attention(query (B, Lq, E), key (B, Lk, E), value, ...)``."""
    b, lq, e = get_shape(inputs[0])
    lk = get_shape(inputs[1])[1]
    projections = b * (2 * lq + 2 * lk) * e * e  # q, k, v and output projections
    return projections + b * lq * lk * 2 * e


def einsum_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """Exact MACs of a two-operand ``einsum``: the product of all index sizes.

    mmengine's handle reads the count back from ``numpy.einsum_path``'s
    printout, rounded to 4 significant digits; other operand counts use it.
    """
    equation = inputs[0].toIValue().replace(' ', '')
    operands = [get_shape(v) for v in inputs[1].node().inputs()]
    terms = equation.split('->')[0].split(',')
    if len(operands) != 2 or '.' in equation:
        return mmengine_einsum_flop_jit(inputs, outputs)
    sizes = {}
    for term, shape in zip(terms, operands):
        sizes.update(zip(term, shape))
    flops = 1
    for size in sizes.values():
        flops *= size
    return flops


#: Handles added to (or replacing) mmengine's defaults.
EXTRA_HANDLES = {
    'aten::einsum': einsum_flop_jit,
    'aten::scaled_dot_product_attention': sdpa_flop_jit,
    'aten::_native_multi_head_attention': native_mha_flop_jit,
    MSDA_OP: _msda_handle(0, 2),
    MMCV_MSDA_OP: _msda_handle(0, 3),
}


class _TracedMSDeformAttnCore(torch.autograd.Function):
    """The pure-PyTorch deformable-attention core as one traced op (counting only)."""

    @staticmethod
    def forward(ctx, value: Tensor, spatial_shapes: Tensor, locations: Tensor,
                weights: Tensor) -> Tensor:
        return _ORIGINAL_CORE(value, spatial_shapes, locations, weights)


_ORIGINAL_CORE = ms_deform_attn.ms_deform_attn_core


def _traced_from_projections(value: Tensor, spatial_shapes: Tensor, reference_points: Tensor,
                             projections: Tensor, num_heads: int, num_points: int) -> Tensor:
    """The inference kernel's computation, its sampling traced as ``MSDA_OP``."""
    split = num_heads * spatial_shapes.shape[0] * num_points * 2
    locations, weights = ms_deform_attn.sampling_locations_and_weights(
        reference_points, projections[..., :split], projections[..., split:].contiguous(),
        spatial_shapes, num_heads, num_points)
    return _TracedMSDeformAttnCore.apply(value, spatial_shapes, locations, weights)


@contextlib.contextmanager
def traced_ms_deform_attn() -> Iterator[None]:
    """Within the block, ``MSDeformAttn`` traces any of its cores as the op ``MSDA_OP``."""
    with mock.patch.object(ms_deform_attn, 'ms_deform_attn_core',
                           _TracedMSDeformAttnCore.apply), \
            mock.patch.object(ms_deform_attn, 'ms_deform_attn_gather',
                              _TracedMSDeformAttnCore.apply), \
            mock.patch.object(ms_deform_attn, 'ms_deform_attn_cpu',
                              _TracedMSDeformAttnCore.apply), \
            mock.patch.object(ms_deform_attn, 'ms_deform_attn_cpu_from_projections',
                              _traced_from_projections):
        yield


class InferenceGraph(nn.Module):
    """What is traced: the network (``mode='tensor'``) and optionally post-processing.

    Args:
        model: A ``MaskFormerSegmentor`` (any model whose ``mode='tensor'``
            forward returns final class logits (B, Q, K + 1) and mask logits
            (B, Q, h, w)).
        postprocess: Also upsample the mask logits to the input size and,
            when ``semantic``, combine them into class scores (B, K, H, W), as
            detectron2's count of the official model includes its
            ``sem_seg_postprocess`` and ``semantic_inference``.
        semantic: Count the semantic combination (an einsum ``Q * K * H * W``).
    """

    def __init__(self, model: nn.Module, postprocess: bool = True,
                 semantic: bool = True) -> None:
        super().__init__()
        self.model = model
        self.postprocess = postprocess
        self.semantic = semantic

    def forward(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        """Args: inputs (B, 3, H, W). Returns the logits or the semantic scores."""
        cls_logits, mask_logits = self.model(inputs, mode='tensor')
        if not self.postprocess:
            return cls_logits, mask_logits
        masks = F.interpolate(mask_logits, size=inputs.shape[-2:], mode='bilinear',
                              align_corners=False)
        if not self.semantic:
            return cls_logits, masks
        probs = cls_logits.softmax(-1)[..., :-1]
        return (torch.einsum('bqc,bqhw->bchw', probs, masks.sigmoid()), )


@dataclass
class FlopReport:
    """FLOPs and parameters of a model, in total and per module.

    Attributes:
        total: FLOPs of the whole traced graph.
        by_module: FLOPs of each module name (``''`` is the model; post-
            processing is ``total - by_module['']``).
        params: Parameters of each module name.
        deform_sampling: FLOPs of the deformable sampling and weighting (part
            of ``total``).
        by_operator: FLOPs per counted op type.
        skipped_ops: Op types met but not counted, with how often.
    """

    total: int
    by_module: Dict[str, int]
    params: Dict[str, int]
    deform_sampling: int
    by_operator: Dict[str, int] = field(default_factory=dict)
    skipped_ops: Dict[str, int] = field(default_factory=dict)


def count_flops(model: nn.Module, inputs: Tensor, postprocess: bool = True,
                semantic: bool = True) -> FlopReport:
    """Counts the FLOPs of one inference of ``model`` on ``inputs`` (B, 3, H, W).

    See the module docstring for the convention. The model is traced with
    ``torch.jit.trace`` in eval mode without gradients.
    """
    graph = InferenceGraph(model, postprocess, semantic).eval()
    with torch.no_grad(), traced_ms_deform_attn():
        analyzer = FlopAnalyzer(graph, (inputs, ))
        analyzer.set_op_handle(**EXTRA_HANDLES)
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        analyzer.tracer_warnings('none')
        by_module = {_strip(name): int(count) for name, count in analyzer.by_module().items()
                     if name.startswith('model') or name == ''}
        by_operator = {op: int(count) for op, count in analyzer.by_operator().items()}
        skipped = dict(analyzer.unsupported_ops())
    params = {name: int(count) for name, count in parameter_count(model).items()}
    deform = sum(count for op, count in by_operator.items() if 'MSDeformAttn' in op or
                 'MultiScaleDeformableAttn' in op)
    return FlopReport(total=int(analyzer.total()), by_module=by_module, params=params,
                      deform_sampling=deform, by_operator=by_operator,
                      skipped_ops=dict(Counter(skipped)))


def _strip(name: str) -> str:
    """``'model.backbone'`` -> ``'backbone'``; the wrapper ``''`` -> ``'<graph>'``."""
    if name == '':
        return '<graph>'
    return name[len('model.'):] if name.startswith('model.') else ''


def module_rows(report: FlopReport, names: Optional[Sequence[str]] = None
                ) -> List[Tuple[str, int, int]]:
    """``(name, params, flops)`` of the model, the given modules and post-processing.

    Args:
        report: A :func:`count_flops` result.
        names: Module names to list; by default the model's children and the
            children of ``decode_head`` that have parameters or FLOPs.
    """
    if names is None:
        names = [n for n in report.by_module if n and n not in ('<graph>', ) and
                 (n.count('.') == 0 or (n.startswith('decode_head.') and n.count('.') == 1))]
    rows = [(name, report.params.get(name, 0), report.by_module.get(name, 0)) for name in names]
    rows = [row for row in rows if row[1] or row[2]]
    rows.append(('post-processing', 0, report.total - report.by_module.get('', 0)))
    rows.append(('total', report.params.get('', 0), report.total))
    return rows
