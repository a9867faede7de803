"""Tell mask errors from class errors of a trained mask-classification model.

Usage:
    python tools/analysis_tools/analyze_queries.py CONFIG CHECKPOINT \
        [--max-images N] [--json-out FILE] [--cfg-options KEY=VALUE ...]

Runs the model over the config's test set (semantic ground truth) and, for each
ground-truth class region, finds the query whose mask (sigmoid >= 0.5) overlaps
it best. Prints per class: the number of segments, that query's mean mask IoU,
how often its arg-max class is right, its mean probability of the right class,
and the mean over segments of the best probability of the right class among
all queries. Example (the CPU demo)::

    | class | segments | mask IoU | class right | p(class) | max p(class) |
    | wall  |       55 |    0.930 |       0.727 |    0.500 |        0.870 |
    | box   |       35 |    0.750 |       0.143 |    0.160 |        0.260 |

High mask IoU with a low "class right" means the masks are learnt and the
classes are not.
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, List, Optional

import torch
from mmengine.config import DictAction
from mmengine.runner import Runner
from torch.utils.data import DataLoader
from terminaltables import AsciiTable

from mmseg_maskformer.apis import init_model
from mmseg_maskformer.evaluation.functional import best_query_records, summarise_records
from mmseg_maskformer.models.postprocess import resize_to_original


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse and check the command line."""
    parser = argparse.ArgumentParser(
        description='Per-class mask IoU and class accuracy of the best query of every '
        'ground-truth segment')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--max-images', type=int, default=None,
                        help='analyse only the first N test images')
    parser.add_argument('--json-out', help='also write the per-class summary as JSON')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config (key=value)')
    args = parser.parse_args(argv)
    for path in (args.config, args.checkpoint):
        if not osp.isfile(path):
            parser.error(f'{path} does not exist')
    if args.max_images is not None and args.max_images < 1:
        parser.error(f'--max-images must be >= 1, got {args.max_images}')
    return args


def analyse(model: torch.nn.Module, loader: DataLoader, ignore_index: int = 255,
            max_images: Optional[int] = None) -> Dict[int, dict]:
    """Run the analysis over ``loader``; returns :func:`summarise_records`."""
    total = len(loader.dataset) if max_images is None else min(max_images, len(loader.dataset))
    records, seen = [], 0
    with torch.no_grad():
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            cls_logits, mask_logits = model(data['inputs'], data['data_samples'], mode='tensor')
            input_shape = tuple(data['inputs'].shape[-2:])
            for i, sample in enumerate(data['data_samples']):
                if 'gt_sem_seg' not in sample:
                    raise KeyError('the test pipeline must load the semantic ground truth '
                                   '(gt_sem_seg)')
                meta = sample.metainfo
                masks = resize_to_original(mask_logits[i],
                                           meta.get('batch_input_shape', input_shape),
                                           meta.get('img_shape', input_shape),
                                           meta.get('ori_shape', input_shape))
                records += best_query_records(cls_logits[i], masks,
                                              sample.gt_sem_seg.data[0].to(masks.device),
                                              ignore_index)
                seen += 1
                if seen % 50 == 0 or seen == total:
                    print(f'[analyze_queries] {seen}/{total} images', file=sys.stderr, flush=True)
                if seen == total:
                    return summarise_records(records)
    return summarise_records(records)


def format_table(summary: Dict[int, dict], class_names: List[str]) -> str:
    """The per-class summary as an ASCII table."""
    rows = [['class', 'segments', 'mask IoU', 'class right', 'p(class)', 'max p(class)']]
    for label, stats in summary.items():
        name = class_names[label] if label < len(class_names) else str(label)
        rows.append([name, stats['segments']] + [
            f'{stats[key]:.3f}' for key in ('mask_iou', 'class_right', 'prob', 'max_prob')])
    return AsciiTable(rows).table


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    # init_model skips backbone pretraining and loads the checkpoint strictly
    model = init_model(args.config, args.checkpoint, device='cpu',
                       cfg_options=args.cfg_options, strict=True)
    loader = Runner.build_dataloader(model.cfg.test_dataloader)
    summary = analyse(model, loader, int(model.cfg.get('ignore_index', 255)), args.max_images)
    print(format_table(summary, list(loader.dataset.metainfo.get('classes', ()))))
    if args.json_out:
        with open(args.json_out, 'w', encoding='utf-8') as f:
            json.dump({str(k): v for k, v in summary.items()}, f, indent=2)
        print(f'summary written to {args.json_out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
