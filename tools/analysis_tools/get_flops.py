"""Count the FLOPs and parameters of the model of a config.

Usage:
    python tools/analysis_tools/get_flops.py CONFIG [--shape H W] [--batch-size B]
        [--no-postprocess] [--json-out FILE] [--cfg-options KEY=VALUE ...]

Convention (detectron2 / fvcore, as the MaskFormer and Mask2Former papers):
1 multiply-add = 1 FLOP, inference, one image of H x W (default: the config's
``crop_size``, else 512 x 512); element-wise ops are not counted. Counted ops
and the multi-scale deformable attention's count: see
``mmseg_maskformer/utils/flops.py``. By default the count includes the
post-processing of the official model's count (mask upsampling to the input
size and, for a semantic model, the class-mask combination);
``--no-postprocess`` counts the network alone.

Prints params (M) and GFLOPs of the backbone, the head's pixel decoder and
transformer decoder, post-processing and the total, the share of the
deformable sampling, and the paper's figures for the config when known.
"""
import argparse
import json
import os.path as osp
import re
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from terminaltables import AsciiTable

from mmseg_maskformer.utils.flops import FlopReport, count_flops, module_rows

#: Papers' figures (V100, batch 1): config name pattern -> (model, params M, GFLOPs, note).
#: The papers count with detectron2 averaged over validation images; COCO
#: images are resized to a shorter side of 800 (e.g. --shape 800 1088).
PAPER_FIGURES: List[Tuple[str, str, float, float, str]] = [
    (r'^maskformer_r50_8xb2-160k_ade20k-512x512', 'MaskFormer R50 ADE20K', 41, 53, '24.5 fps'),
    (r'^maskformer_r101_8xb2-160k_ade20k-512x512', 'MaskFormer R101 ADE20K', 60, 73, ''),
    (r'^maskformer_swin-t_8xb2-160k_ade20k-512x512', 'MaskFormer Swin-T ADE20K', 42, 55, ''),
    (r'^maskformer_swin-s_8xb2-160k_ade20k-512x512', 'MaskFormer Swin-S ADE20K', 63, 79, ''),
    (r'^maskformer_swin-b.*ade20k-640x640', 'MaskFormer Swin-B ADE20K', 102, 195, ''),
    (r'^maskformer_swin-l.*ade20k-640x640', 'MaskFormer Swin-L ADE20K', 212, 375, '7.9 fps'),
    (r'^maskformer_r50_.*coco-panoptic', 'MaskFormer R50 COCO panoptic', 45, 181, '17.6 fps'),
    (r'^mask2former_r50_.*coco-panoptic', 'Mask2Former R50 COCO panoptic', 44, 226, '8.6 fps'),
    (r'^mask2former_r101_.*coco-panoptic', 'Mask2Former R101 COCO panoptic', 63, 293,
     '7.2 fps'),
    (r'^mask2former_swin-l.*coco-panoptic', 'Mask2Former Swin-L (200 q) COCO panoptic', 216, 868,
     '4.0 fps'),
]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parses the command line."""
    parser = argparse.ArgumentParser(description='Count FLOPs and parameters of a model.')
    parser.add_argument('config', help='config file')
    parser.add_argument('--shape', type=int, nargs=2, default=None, metavar=('H', 'W'),
                        help="input size (default: the config's crop_size, else 512 512)")
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--no-postprocess', action='store_true',
                        help='count the network only (no upsampling / semantic combination)')
    parser.add_argument('--json-out', default=None, help='also write the counts here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='config overrides')
    args = parser.parse_args(argv)
    if not osp.isfile(args.config):
        parser.error(f'config file {args.config} does not exist')
    return args


def input_shape(cfg: Config, shape: Optional[Sequence[int]]) -> Tuple[int, int]:
    """``--shape``, else the config's ``crop_size``, else (512, 512)."""
    if shape is not None:
        return int(shape[0]), int(shape[1])
    crop = cfg.get('crop_size')
    return (int(crop[0]), int(crop[1])) if crop else (512, 512)


def paper_figure(config: str) -> Optional[Tuple[str, float, float, str]]:
    """The papers' ``(model, params M, GFLOPs, note)`` of a config, if listed."""
    name = osp.splitext(osp.basename(config))[0]
    for pattern, *figure in PAPER_FIGURES:
        if re.search(pattern, name):
            return tuple(figure)
    return None


def report_table(report: FlopReport) -> str:
    """Params (M) and GFLOPs per module, post-processing and total."""
    rows = [['module', 'params (M)', 'GFLOPs']]
    rows += [[name, f'{params / 1e6:.2f}', f'{flops / 1e9:.3f}']
             for name, params, flops in module_rows(report)]
    rows.append(['(of which deformable sampling)', '', f'{report.deform_sampling / 1e9:.3f}'])
    return AsciiTable(rows).table


def build_model(cfg: Config) -> torch.nn.Module:
    """Our model of the config, in eval mode, without weights."""
    import mmseg_maskformer  # noqa: F401  (registers our modules)
    from mmseg_maskformer.registry import MODELS
    init_default_scope(cfg.get('default_scope', 'mmseg_maskformer'))
    return MODELS.build(cfg.model).eval()


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Counts, prints and returns (optionally writes) the FLOPs of the config's model."""
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    shape = input_shape(cfg, args.shape)
    model = build_model(cfg)
    semantic = bool(getattr(model, 'test_cfg', {}).get('semantic_on', True))
    inputs = torch.randn(args.batch_size, 3, *shape)
    report = count_flops(model, inputs, postprocess=not args.no_postprocess, semantic=semantic)
    post = 'none' if args.no_postprocess else 'semantic' if semantic else 'mask upsampling'
    print(f'input shape: {args.batch_size} x 3 x {shape[0]} x {shape[1]}; post-processing: {post}')
    print(report_table(report))
    print(f'without the deformable sampling (as detectron2 counts the official CUDA op): '
          f'{(report.total - report.deform_sampling) / 1e9:.3f} GFLOPs')
    figure = paper_figure(args.config)
    if figure is not None:
        print(f'paper ({figure[0]}): {figure[1]} M params, {figure[2]} GFLOPs '
              f'(averaged over validation images) {figure[3]}'.rstrip())
    skipped = ', '.join(f'{op} x{n}' for op, n in sorted(report.skipped_ops.items()))
    print(f'not counted (element-wise or index ops): {skipped}')
    record = dict(config=args.config, shape=list(shape), batch_size=args.batch_size,
                  postprocess=not args.no_postprocess, total=report.total,
                  deform_sampling=report.deform_sampling,
                  modules={name: dict(params=p, flops=f) for name, p, f in module_rows(report)},
                  by_operator=report.by_operator, paper=figure)
    if args.json_out:
        with open(args.json_out, 'w') as f:
            json.dump(record, f, indent=2)
    return record


if __name__ == '__main__':
    main()
