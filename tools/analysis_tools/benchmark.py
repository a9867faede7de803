"""Time the model of a config: inference latency and throughput, training step, peak memory.

Usage:
    python tools/analysis_tools/benchmark.py CONFIG [--shape H W] [--batch-size B]
        [--mode inference|train|both] [--repeats 5] [--warmup 2] [--device cpu|cuda]
        [--amp bf16|fp16] [--outputs semantic,panoptic,instance] [--checkpoint FILE]
        [--compare mmseg|mmdet|hf] [--json-out FILE] [--cfg-options KEY=VALUE ...]

The model is built from the config (random weights unless ``--checkpoint``)
and fed a synthetic batch of B normalised images of H x W pixels, i.e. the
tensors the data preprocessor would hand over (preprocessing, a normalisation
and a padding, is not timed), with random rectangular segments as targets in
``PackMaskFormerInputs``'s format. Measured:

* inference: one ``predict`` call (forward + post-processing into the
  ``--outputs``, at the input size) without gradients; median and min over
  ``--repeats`` calls after ``--warmup`` untimed ones; throughput = B / median;
* train: one step = forward + loss + backward + AdamW step;
* peak memory of one more call: CUDA ``max_memory_allocated`` above the
  memory allocated before; CPU the peak resident set size (sampled) above the
  RSS before.

``--compare`` builds the peer implementation of the same architecture with the
same weights and times it in the same process: ``mmseg`` (``EncoderDecoder``
+ mmseg ``Mask2FormerHead``: semantic output), ``mmdet`` (``Mask2Former``
detector: panoptic and instance outputs) or ``hf`` (``transformers``
``Mask2FormerForUniversalSegmentation`` + its image processor's
post-processing). The table then shows peer / ours ratios (> 1: ours faster).
"""
import argparse
import importlib
import json
import os.path as osp
import platform
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import DefaultScope, init_default_scope
from terminaltables import AsciiTable
from torch import Tensor, nn

from mmseg_maskformer.utils.benchmark import (AMP_DTYPES, inference_step, keep_freed_heap,
                                              measure_peak_memory, synchronizer, synthetic_batch,
                                              time_fn, train_step)

OUTPUTS = ('semantic', 'panoptic', 'instance')
#: The outputs each peer can produce.
PEER_OUTPUTS = {'mmseg': {'semantic'}, 'mmdet': {'panoptic', 'instance'},
                'hf': {'semantic', 'panoptic', 'instance'}}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parses the command line."""
    parser = argparse.ArgumentParser(description='Benchmark the model of a config on '
                                     'synthetic inputs.')
    parser.add_argument('config', help='config file')
    parser.add_argument('--shape', type=int, nargs=2, default=[512, 512], metavar=('H', 'W'))
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--mode', choices=['inference', 'train', 'both'], default='inference')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--amp', choices=sorted(AMP_DTYPES), default=None)
    parser.add_argument('--outputs', default=None,
                        help='comma-separated subset of semantic,panoptic,instance '
                        '(default: those switched on in the config test_cfg)')
    parser.add_argument('--checkpoint', default=None, help='weights to load (optional)')
    parser.add_argument('--compare', choices=sorted(PEER_OUTPUTS), default=None)
    parser.add_argument('--num-segments', type=int, default=5,
                        help='random rectangles per training image')
    parser.add_argument('--json-out', default=None, help='also write the results here')
    parser.add_argument('--malloc', choices=['default', 'keep'], default='default',
                        help="'keep': glibc keeps freed memory for reuse (no page faults on "
                        'every large tensor; the whole process, peer included)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='config overrides')
    args = parser.parse_args(argv)
    if not osp.isfile(args.config):
        parser.error(f'config file {args.config} does not exist')
    return args


def resolve_outputs(test_cfg: Dict[str, Any], requested: Optional[str]) -> List[str]:
    """The outputs to produce: ``requested`` (comma-separated) or the config's."""
    if requested is None:
        outputs = [name for name in OUTPUTS if test_cfg.get(f'{name}_on', name == 'semantic')]
    else:
        outputs = [name.strip() for name in requested.split(',') if name.strip()]
    unknown = sorted(set(outputs) - set(OUTPUTS))
    if unknown or not outputs:
        raise ValueError(f'--outputs takes a non-empty subset of {OUTPUTS}, got {requested!r}')
    return outputs


def load_config(args: argparse.Namespace) -> Tuple[Config, List[str]]:
    """The config with ``--cfg-options`` and the outputs switched into ``test_cfg``."""
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    test_cfg = dict(cfg.model.get('test_cfg') or {})
    outputs = resolve_outputs(test_cfg, args.outputs)
    test_cfg.update({f'{name}_on': name in outputs for name in OUTPUTS})
    cfg.model.test_cfg = test_cfg
    return cfg, outputs


def build_ours(cfg: Config, checkpoint: Optional[str], device: str) -> nn.Module:
    """Our model in eval mode on ``device`` (random weights unless ``checkpoint``)."""
    import mmseg_maskformer  # noqa: F401  (registers our modules)
    from mmseg_maskformer.registry import MODELS
    init_default_scope(cfg.get('default_scope', 'mmseg_maskformer'))
    model = MODELS.build(cfg.model)
    if checkpoint:
        from mmengine.runner import load_checkpoint
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    return model.to(device).eval()


def build_openmmlab_peer(peer: str, cfg: Config, ours: nn.Module,
                         outputs: Sequence[str]) -> nn.Module:
    """mmseg's or mmdet's Mask2Former holding our weights (strict load)."""
    from mmseg_maskformer.converters.mmdet import (mask2former_peer_config,
                                                   ours_to_mmdet_mask2former)
    peer_cfg = mask2former_peer_config(cfg.model, peer)
    if peer == 'mmdet':
        # mmdet's top-k fails when asked for more than queries x classes; ours clamps
        head = cfg.model.decode_head
        most = head.transformer_decoder.get('num_queries', 100) * head.num_classes
        peer_cfg.model.test_cfg.update(
            {f'{name}_on': name in outputs for name in OUTPUTS},
            max_per_image=min(cfg.model.test_cfg.get('max_per_image', 100), most))
    registry = importlib.import_module(f'{peer}.registry').MODELS
    with DefaultScope.overwrite_default_scope(peer_cfg.default_scope):
        model = registry.build(peer_cfg.model)
    converted = ours_to_mmdet_mask2former(ours.state_dict(), peer)
    model.load_state_dict(converted.state_dict, strict=True)
    return model.to(next(ours.parameters()).device).eval()


def to_det_samples(samples: Sequence[Any]) -> List[Any]:
    """mmdet ``DetDataSample``s of our samples: same metainfo and targets.

    The masks become ``BitmapMasks`` and no ``gt_sem_seg`` is passed, so mmdet
    takes every segment as a target as ours does.
    """
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    det = []
    for sample in samples:
        gt = sample.gt_instances
        masks = gt.masks.cpu().numpy().astype('uint8')
        out = DetDataSample(metainfo=sample.metainfo)
        out.gt_instances = InstanceData(labels=gt.labels,
                                        masks=BitmapMasks(masks, *masks.shape[1:]))
        det.append(out)
    return det


def measure(step: Callable[[], Any], name: str, args: argparse.Namespace) -> Dict[str, Any]:
    """Peak memory of the first call of ``step``, then its times.

    The memory is taken on the first call, before the allocator holds memory
    from earlier calls (on CPU the resident set would not grow again).

    Returns:
        ``median_s``, ``min_s``, ``mean_s``, ``times_s``, ``images_per_s``
        (B / median) and ``peak_memory_mib``.
    """
    try:
        memory = measure_peak_memory(step, args.device)
    except Exception as exc:  # noqa: BLE001  (re-raised with context)
        raise RuntimeError(f'the {name} step failed: {exc}') from exc
    stats = time_fn(step, args.warmup, args.repeats, synchronizer(args.device))
    return dict(median_s=stats.median, min_s=stats.min, mean_s=stats.mean, times_s=stats.times,
                images_per_s=args.batch_size / stats.median, peak_memory_mib=memory)


StepFactories = Dict[str, Callable[[], Callable[[], Any]]]


def mm_steps(model: nn.Module, inputs: Tensor, samples: Sequence[Any],
             args: argparse.Namespace) -> StepFactories:
    """Step factories of an mmengine model (ours, mmseg's or mmdet's)."""
    factories = {}
    if args.mode in ('inference', 'both'):
        factories['inference'] = lambda: inference_step(model, inputs, samples, args.amp)
    if args.mode in ('train', 'both'):
        factories['train'] = lambda: train_step(model, inputs, samples, args.amp)
    return factories


def hf_config_from_ours(model_cfg: Dict[str, Any]) -> Any:
    """A ``transformers.Mask2FormerConfig`` of our Mask2Former's architecture.

    Raises:
        ValueError: For what the Hugging Face model cannot express (other
            heads or backbones, different encoder and decoder head counts,
            GroupNorm groups other than 32).
    """
    import transformers

    from mmseg_maskformer.converters.mmdet import MMSEG_BACKBONES
    head = model_cfg['decode_head']
    pixel, dec = head['pixel_decoder'], head['transformer_decoder']
    if head['type'] != 'Mask2FormerDecodeHead' or pixel.get('num_heads', 8) != dec.get(
            'num_heads', 8) or pixel.get('num_points', 4) != 4:
        raise ValueError('--compare hf needs a Mask2FormerDecodeHead whose pixel decoder and '
                         'transformer decoder have the same number of heads and 4 points')
    if pixel.get('num_groups', 32) != 32:
        raise ValueError("--compare hf: Hugging Face's pixel decoder has GroupNorm(32), the "
                         f'config {pixel["num_groups"]} groups; set '
                         'model.decode_head.pixel_decoder.num_groups=32 with --cfg-options')
    bb = model_cfg['backbone']
    backbone_type = MMSEG_BACKBONES.get(bb['type'], bb['type'])  # ours -> mmseg's class
    if backbone_type == 'ResNet':
        depths = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3]}
        expansion = 1 if bb['depth'] < 50 else 4
        base = bb.get('base_channels', 64)
        backbone = transformers.ResNetConfig(
            embedding_size=bb.get('stem_channels', 64), depths=depths[bb['depth']],
            hidden_sizes=[base * expansion * 2**i for i in range(4)],
            layer_type='basic' if expansion == 1 else 'bottleneck',
            out_features=['stage1', 'stage2', 'stage3', 'stage4'])
    elif backbone_type == 'SwinTransformer':
        backbone = transformers.SwinConfig(
            image_size=bb.get('pretrain_img_size', 224), embed_dim=bb['embed_dims'],
            depths=list(bb['depths']), num_heads=list(bb['num_heads']),
            window_size=bb.get('window_size', 7), drop_path_rate=0.0,
            out_features=['stage1', 'stage2', 'stage3', 'stage4'])
    else:
        raise ValueError(f'--compare hf: no Hugging Face backbone for {bb["type"]}')
    num_classes = head['num_classes']
    return transformers.Mask2FormerConfig(
        backbone_config=backbone, feature_size=pixel.get('feat_channels', 256),
        mask_feature_size=pixel.get('out_channels', 256), hidden_dim=dec.get('embed_dims', 256),
        encoder_feedforward_dim=pixel.get('feedforward_dims', 1024),
        encoder_layers=pixel.get('num_encoder_layers', 6),
        decoder_layers=dec.get('num_layers', 9) + 1, num_attention_heads=dec.get('num_heads', 8),
        dim_feedforward=dec.get('feedforward_dims', 2048), num_queries=dec.get('num_queries', 100),
        train_num_points=head['criterion'].get('num_points', 12544),
        id2label={i: str(i) for i in range(num_classes)})


def build_hf_peer(cfg: Config, ours: nn.Module) -> nn.Module:
    """A random Hugging Face Mask2Former whose weights are copied into ``ours`` (strict).

    Uses ``mmseg_maskformer.converters.huggingface.convert_huggingface``
    (Hugging Face -> ours).
    """
    import transformers

    from mmseg_maskformer.converters.huggingface import convert_huggingface
    hf_config = hf_config_from_ours(cfg.model)
    hf_model = transformers.Mask2FormerForUniversalSegmentation(hf_config)
    converted = convert_huggingface(hf_model.state_dict(), hf_config.to_dict())
    if converted.unmatched:
        raise RuntimeError('--compare hf: ' + converted.summary())
    # a Swin backbone's relative_position_index buffers are constants that every
    # implementation builds itself at construction; any other missing key is an error
    result = ours.load_state_dict(converted.state_dict, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith('relative_position_index')]
    if missing or result.unexpected_keys:
        raise RuntimeError(f'--compare hf: missing keys {missing}, unexpected keys '
                           f'{result.unexpected_keys}')
    return hf_model.to(next(ours.parameters()).device).eval()


def hf_steps(model: nn.Module, inputs: Tensor, samples: Sequence[Any], outputs: Sequence[str],
             args: argparse.Namespace) -> StepFactories:
    """Step factories of the Hugging Face model and its image processor's post-processing."""
    import transformers

    from mmseg_maskformer.utils.benchmark import autocast
    processor = transformers.Mask2FormerImageProcessor()
    sizes = [tuple(inputs.shape[-2:])] * inputs.shape[0]
    post = {'semantic': processor.post_process_semantic_segmentation,
            'panoptic': processor.post_process_panoptic_segmentation,
            'instance': processor.post_process_instance_segmentation}

    def infer() -> Any:
        with torch.no_grad(), autocast(args.device, args.amp):
            out = model(pixel_values=inputs)
            return [post[name](out, target_sizes=sizes) for name in outputs]

    def make_train() -> Callable[[], Any]:
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
        masks = [s.gt_instances.masks.float() for s in samples]
        labels = [s.gt_instances.labels for s in samples]

        def step() -> Any:
            with autocast(args.device, args.amp):
                loss = model(pixel_values=inputs, mask_labels=masks, class_labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return loss.detach()
        return step

    def make_inference() -> Callable[[], Any]:
        model.eval()
        return infer

    factories = {}
    if args.mode in ('inference', 'both'):
        factories['inference'] = make_inference
    if args.mode in ('train', 'both'):
        factories['train'] = make_train
    return factories


def peer_factories(args: argparse.Namespace, cfg: Config, ours: nn.Module,
                   outputs: List[str], inputs: Tensor,
                   samples: Sequence[Any]) -> StepFactories:
    """Builds ``args.compare``'s model with our weights and returns its step factories."""
    missing = sorted(set(outputs) - PEER_OUTPUTS[args.compare])
    if missing:
        raise ValueError(f'--compare {args.compare} cannot produce {missing}; choose --outputs '
                         f'from {sorted(PEER_OUTPUTS[args.compare])}')
    if args.compare == 'hf':
        return hf_steps(build_hf_peer(cfg, ours), inputs, samples, outputs, args)
    peer = build_openmmlab_peer(args.compare, cfg, ours, outputs)
    peer_samples = to_det_samples(samples) if args.compare == 'mmdet' else samples
    return mm_steps(peer, inputs, peer_samples, args)


def run(factories: StepFactories, args: argparse.Namespace) -> Dict[str, Any]:
    """Makes and measures each step in order (inference before train, which changes weights)."""
    return {name: measure(factory(), name, args) for name, factory in factories.items()}


def results_table(results: Dict[str, Dict[str, Any]]) -> str:
    """One row per implementation and step; ratio columns against ``ours``."""
    header = ['model', 'step', 'median (ms)', 'min (ms)', 'images/s', 'peak mem (MiB)',
              'median / ours']
    rows = [header]
    for impl, steps in results.items():
        for step, r in steps.items():
            ratio = r['median_s'] / results['ours'][step]['median_s']
            rows.append([impl, step, f'{r["median_s"] * 1e3:.1f}', f'{r["min_s"] * 1e3:.1f}',
                         f'{r["images_per_s"]:.2f}', f'{r["peak_memory_mib"]:.0f}',
                         f'{ratio:.2f}'])
    return AsciiTable(rows).table


def environment(args: argparse.Namespace, outputs: List[str]) -> Dict[str, Any]:
    """What the numbers depend on, for the JSON record."""
    env = dict(config=args.config, shape=list(args.shape), batch_size=args.batch_size,
               device=args.device, amp=args.amp, outputs=outputs, repeats=args.repeats,
               warmup=args.warmup, torch=torch.__version__, python=platform.python_version(),
               threads=torch.get_num_threads(), malloc=args.malloc)
    if args.device.startswith('cuda'):
        env['gpu'] = torch.cuda.get_device_name()
    return env


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Runs the benchmark, prints the table and returns (and optionally writes) the record."""
    args = parse_args(argv)
    if args.malloc == 'keep' and not keep_freed_heap():
        raise SystemExit('--malloc keep needs glibc (mallopt was not accepted)')
    cfg, outputs = load_config(args)
    ours = build_ours(cfg, args.checkpoint, args.device)
    num_classes = ours.decode_head.num_classes
    inputs, samples = synthetic_batch(args.batch_size, tuple(args.shape), num_classes,
                                      args.num_segments, device=args.device)
    factories = {'ours': mm_steps(ours, inputs, samples, args)}
    if args.compare:  # built before our training step changes the weights
        factories[args.compare] = peer_factories(args, cfg, ours, outputs, inputs, samples)
    results = {impl: run(f, args) for impl, f in factories.items()}
    print(results_table(results))
    record = dict(environment=environment(args, outputs), results=results)
    if args.json_out:
        with open(args.json_out, 'w') as f:
            json.dump(record, f, indent=2)
    return record


if __name__ == '__main__':
    main()
