"""Prepare the ADE20K panoptic and instance annotations from the raw release.

Example::

    python tools/dataset_converters/ade20k_panoptic.py data/ade/ADEChallengeData2016 \
        --splits train val --nproc 8

Reads ``images/``, ``annotations/`` and ``annotations_instance/`` (the instance
release of the SceneParsing benchmark) and writes, next to them,
``ade20k_panoptic_{split}.json``, ``ade20k_panoptic_{split}/*.png`` and
``ade20k_instance_{split}.json``, as the ADE20K panoptic configs expect. Splits
whose outputs are complete are skipped unless ``--overwrite`` is given.
"""
import argparse
import sys
from typing import List, Optional

from mmseg_maskformer.datasets.converters.ade20k_panoptic import (SPLITS, convert_split,
                                                                  missing_inputs,
                                                                  outputs_complete, split_paths)
from mmseg_maskformer.utils.progress import progress_printer

HINTS = {
    'images': 'ADEChallengeData2016.zip from http://sceneparsing.csail.mit.edu/',
    'annotations': 'ADEChallengeData2016.zip from http://sceneparsing.csail.mit.edu/',
    'annotations_instance': ('http://sceneparsing.csail.mit.edu/data/ChallengeData2017/'
                             'annotations_instance.tar, extracted into the root'),
}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse and validate the command line."""
    parser = argparse.ArgumentParser(
        description='Prepare ADE20K panoptic + instance annotations from the raw release')
    parser.add_argument('root', help='the ADEChallengeData2016 folder')
    parser.add_argument('--splits', nargs='+', choices=sorted(SPLITS), default=['train', 'val'],
                        help='splits to convert (default: train val)')
    parser.add_argument('--nproc', type=int, default=1, help='worker processes (default: 1)')
    parser.add_argument('--overwrite', action='store_true',
                        help='convert again even when the outputs are complete')
    parser.add_argument('--consistent-stats', action='store_true',
                        help='measure stuff area/bbox on the panoptic PNG (after things paint '
                        'over them) instead of on the semantic mask as the official script')
    args = parser.parse_args(argv)
    if args.nproc < 1:
        parser.error(f'--nproc must be >= 1, got {args.nproc}')
    return args


def check_inputs(root: str, splits: List[str]) -> List[str]:
    """Error lines for every missing raw folder (empty when all exist)."""
    errors = []
    for split in splits:
        for folder in missing_inputs(root, split):
            kind = folder.rstrip('/').split('/')[-2]
            errors.append(f'missing folder {folder}: get it from {HINTS[kind]}')
    return errors


def main(argv: Optional[List[str]] = None) -> int:
    """Convert the requested splits; returns the exit status."""
    args = parse_args(argv)
    errors = check_inputs(args.root, args.splits)
    if errors:
        print('\n'.join(errors), file=sys.stderr)
        return 1
    for split in args.splits:
        paths = split_paths(args.root, split)
        if not args.overwrite and outputs_complete(args.root, split):
            print(f'{split}: outputs complete, skipped ({paths["panoptic_json"]}; '
                  'use --overwrite to convert again)')
            continue
        print(f'{split}: converting {paths["images"]}', flush=True)
        counts = convert_split(args.root, split, nproc=args.nproc,
                               official_stats=not args.consistent_stats,
                               progress=progress_printer('images', split))
        print(f'{split}: {counts["images"]} images, {counts["segments"]} segments '
              f'({counts["stuff"]} stuff, {counts["things"]} things) -> '
              f'{paths["panoptic_json"]}, {paths["panoptic_dir"]}/, {paths["instance_json"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
