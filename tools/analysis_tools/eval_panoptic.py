"""Evaluate COCO-format panoptic predictions: PQ, SQ and RQ as the COCO panoptic API computes them.

Usage:
    python tools/analysis_tools/eval_panoptic.py GT_JSON GT_PNG_DIR PRED_JSON PRED_PNG_DIR \\
        [--json-out FILE] [--classwise]

Prints PQ, SQ, RQ (percent) and the number of categories for All, Things and
Stuff (and, with ``--classwise``, for every category, with its TP, FP, FN). ``--json-out`` writes
the numbers as fractions::

    {"All": {"pq", "sq", "rq", "n"}, "Things": {...}, "Stuff": {...},
     "per_class": {"<category id>": {"pq", "sq", "rq"}}}

Predictions written by ``PanopticQualityMetric(outfile_prefix=P)`` are
``P.panoptic.json`` and ``P.panoptic/``. Exits with status 1 and a one-line
message for invalid inputs, 2 for wrong arguments or missing paths.
"""
import argparse
import json
import os.path as osp
import sys
import time
from typing import List, Optional

from mmseg_maskformer.evaluation.functional import (pq_compute_stat, pq_per_class_table,
                                                    pq_summary_table, summarize_pq)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parses the command line; missing inputs are argument errors."""
    parser = argparse.ArgumentParser(
        description='Panoptic quality of COCO-format panoptic predictions (equal to the '
        'COCO panoptic API pq_compute).')
    parser.add_argument('gt_json', help='ground-truth panoptic JSON (with categories)')
    parser.add_argument('gt_dir', help='folder of the ground-truth panoptic PNGs')
    parser.add_argument('pred_json', help='prediction JSON (annotations with image_id, '
                        'file_name, segments_info)')
    parser.add_argument('pred_dir', help='folder of the predicted panoptic PNGs')
    parser.add_argument('--json-out', help='write the results (fractions) to this JSON file')
    parser.add_argument('--classwise', action='store_true',
                        help='also print the scores of every category')
    args = parser.parse_args(argv)
    for path, what in ((args.gt_json, 'ground-truth JSON'), (args.pred_json, 'prediction JSON')):
        if not osp.isfile(path):
            parser.error(f'{what} {path} does not exist')
    for path, what in ((args.gt_dir, 'ground-truth PNG folder'),
                       (args.pred_dir, 'prediction PNG folder')):
        if not osp.isdir(path):
            parser.error(f'{what} {path} does not exist')
    if args.json_out and osp.dirname(args.json_out) and not osp.isdir(
            osp.dirname(args.json_out)):
        parser.error(f'the folder of --json-out {args.json_out} does not exist')
    return args


def load_json(path: str) -> dict:
    """A JSON file; invalid JSON becomes a ``ValueError`` naming the file."""
    with open(path, encoding='utf-8') as file:
        try:
            return json.load(file)
        except json.JSONDecodeError as error:
            raise ValueError(f'{path} is not valid JSON: {error}') from None


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the evaluation; returns the exit status."""
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        gt = load_json(args.gt_json)
        stat, categories = pq_compute_stat(gt, args.gt_dir, load_json(args.pred_json),
                                           args.pred_dir)
    except (ValueError, KeyError, FileNotFoundError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f'error: {message}', file=sys.stderr)
        return 1
    results = summarize_pq(stat, categories)
    print(pq_summary_table(results))
    if args.classwise:
        print(pq_per_class_table(results, categories, stat))
    print(f'evaluated {len(gt["annotations"])} images in {time.perf_counter() - start:.1f} s')
    if args.json_out:
        per_class = {str(cid): scores for cid, scores in results['per_class'].items()}
        with open(args.json_out, 'w', encoding='utf-8') as file:
            json.dump(dict(results, per_class=per_class), file, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
