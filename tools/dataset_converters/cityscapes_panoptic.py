"""Prepare Cityscapes panoptic annotations from the raw ``gtFine`` release.

Example::

    python tools/dataset_converters/cityscapes_panoptic.py data/cityscapes \
        --splits train val --nproc 8

Reads ``gtFine/{split}/<city>/*_gtFine_instanceIds.png`` and writes, as
cityscapesScripts' ``createPanopticImgs.py``, ``gtFine/cityscapes_panoptic_{split}.json``
and ``gtFine/cityscapes_panoptic_{split}/*_gtFine_panoptic.png`` (19 categories
with their label ids; ``--use-train-id`` writes train ids 0..18 and adds
``_trainId`` to the names). Splits whose JSON exists are skipped unless
``--overwrite`` is given.
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

from mmseg_maskformer.datasets.converters.cityscapes_panoptic import (convert_panoptic_split,
                                                                      panoptic_paths)
from mmseg_maskformer.utils.progress import progress_printer


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse and validate the command line."""
    parser = argparse.ArgumentParser(
        description='Prepare Cityscapes panoptic annotations (createPanopticImgs format)')
    parser.add_argument('root', help='Cityscapes root (gtFine/, leftImg8bit/)')
    parser.add_argument('--splits', nargs='+', choices=['train', 'val', 'test'],
                        default=['train', 'val'], help='splits to convert (default: train val)')
    parser.add_argument('--out-dir', default=None,
                        help='output folder (default: <root>/gtFine, as the official script)')
    parser.add_argument('--use-train-id', action='store_true',
                        help='category ids are train ids 0..18; names end with _trainId')
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
        paths = panoptic_paths(args.root, split, args.out_dir, args.use_train_id)
        if osp.isfile(paths['json']) and not args.overwrite:
            print(f'{split}: {paths["json"]} exists, skipped (use --overwrite)')
            continue
        try:
            counts = convert_panoptic_split(args.root, split, args.out_dir, args.use_train_id,
                                            nproc=args.nproc,
                                            progress=progress_printer('images', split))
        except (FileNotFoundError, ValueError) as error:
            print(f'error: {error}', file=sys.stderr)
            return 1
        print(f'{split}: {counts["images"]} images, {counts["segments"]} segments '
              f'({counts["crowd"]} crowd) -> {paths["json"]}, {paths["png_dir"]}/')
    return 0


if __name__ == '__main__':
    sys.exit(main())
