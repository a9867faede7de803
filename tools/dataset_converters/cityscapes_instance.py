"""Prepare Cityscapes instance annotations (COCO format) from the raw ``gtFine`` release.

Example::

    python tools/dataset_converters/cityscapes_instance.py data/cityscapes \
        --splits train val --nproc 8

Reads ``gtFine/{split}/<city>/*_gtFine_instanceIds.png`` and writes
``annotations/instancesonly_filtered_gtFine_{split}.json`` in the format of
mmdet's ``tools/dataset_converters/cityscapes.py``: 8 thing categories with
their label ids (24 person .. 33 bicycle), compressed RLE masks, crowd groups
with ``iscrowd=1``, image ``file_name`` relative to ``leftImg8bit/{split}/``.
Splits whose JSON exists are skipped unless ``--overwrite`` is given.
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

from mmseg_maskformer.datasets.converters.cityscapes_panoptic import (convert_instance_split,
                                                                      instance_json_path)
from mmseg_maskformer.utils.progress import progress_printer


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse and validate the command line."""
    parser = argparse.ArgumentParser(
        description='Prepare Cityscapes instance annotations in the COCO format')
    parser.add_argument('root', help='Cityscapes root (gtFine/, leftImg8bit/)')
    parser.add_argument('--splits', nargs='+', choices=['train', 'val', 'test'],
                        default=['train', 'val'], help='splits to convert (default: train val)')
    parser.add_argument('--out-dir', default=None,
                        help='output folder (default: <root>/annotations)')
    parser.add_argument('--nproc', type=int, default=1, help='worker processes (default: 1)')
    parser.add_argument('--overwrite', action='store_true',
                        help='convert again when the JSON of a split exists')
    args = parser.parse_args(argv)
    if args.nproc < 1:
        parser.error(f'--nproc must be >= 1, got {args.nproc}')
    return args


def main(argv: Optional[List[str]] = None) -> int:
    """Convert the requested splits; returns the exit status."""
    args = parse_args(argv)
    for split in args.splits:
        path = instance_json_path(args.root, split, args.out_dir)
        if osp.isfile(path) and not args.overwrite:
            print(f'{split}: {path} exists, skipped (use --overwrite)')
            continue
        try:
            counts = convert_instance_split(args.root, split, args.out_dir, nproc=args.nproc,
                                            progress=progress_printer('images', split))
        except (FileNotFoundError, ValueError) as error:
            print(f'error: {error}', file=sys.stderr)
            return 1
        print(f'{split}: {counts["images"]} images, {counts["instances"]} instances '
              f'({counts["crowd"]} crowd) -> {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
