"""Prepare ADE20K-Full (847 classes) from the raw ADE20K 2021 release.

Example::

    python tools/dataset_converters/ade20k_full.py data/ADE20K_2021_17_01 \
        --splits training validation --nproc 8

Reads ``index_ade20k.pkl`` and ``images/ADE/{training,validation}/**/*.jpg`` with
their ``*_seg.png`` and writes, under the release folder (or ``--out-dir``),
``images_detectron2/{split}/*.jpg`` (short side <= 512) and
``annotations_detectron2/{split}/*.tif`` (uint16 train ids, 65535 ignored), as
``configs/_base_/datasets/ade20k_full.py`` expects. Images whose two outputs
exist are skipped unless ``--overwrite`` is given, so an interrupted run can
be resumed.
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

from mmseg_maskformer.datasets.converters.ade20k_full import (ANNOTATION_DIR, IMAGE_DIR,
                                                              INDEX_FILE, SPLITS,
                                                              UnsafeIndexError, convert_split,
                                                              load_index)
from mmseg_maskformer.utils.progress import progress_printer

RELEASE_HINT = 'ADE20K_2021_17_01.zip from https://ade20k.csail.mit.edu/ (registration needed)'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse and validate the command line."""
    parser = argparse.ArgumentParser(
        description='Prepare ADE20K-Full (847 classes) from the ADE20K 2021 release')
    parser.add_argument('root', help='the ADE20K_2021_17_01 folder')
    parser.add_argument('--out-dir', help='output root (default: the release folder)')
    parser.add_argument('--index', help=f'the index pickle (default: ROOT/{INDEX_FILE})')
    parser.add_argument('--splits', nargs='+', choices=SPLITS, default=list(SPLITS),
                        help='splits to convert (default: training validation)')
    parser.add_argument('--nproc', type=int, default=1, help='worker processes (default: 1)')
    parser.add_argument('--overwrite', action='store_true',
                        help='convert again images whose outputs exist')
    args = parser.parse_args(argv)
    if args.nproc < 1:
        parser.error(f'--nproc must be >= 1, got {args.nproc}')
    args.out_dir = args.out_dir or args.root
    args.index = args.index or osp.join(args.root, INDEX_FILE)
    return args


def main(argv: Optional[List[str]] = None) -> int:
    """Convert the requested splits; returns the exit status."""
    args = parse_args(argv)
    if not osp.isdir(args.root):
        print(f'missing release folder {args.root}: extract {RELEASE_HINT}', file=sys.stderr)
        return 1
    try:
        index = load_index(args.index)
    except (FileNotFoundError, UnsafeIndexError, ValueError) as error:
        print(error, file=sys.stderr)
        return 1
    for split in args.splits:
        print(f'{split}: converting into {osp.join(args.out_dir, IMAGE_DIR, split)} and '
              f'{osp.join(args.out_dir, ANNOTATION_DIR, split)}', flush=True)
        try:
            counts = convert_split(args.root, args.out_dir, split,
                                   progress=progress_printer('images', split),
                                   overwrite=args.overwrite, index=index, nproc=args.nproc)
        except (FileNotFoundError, ValueError) as error:
            print(f'{split}: {error}', file=sys.stderr)
            return 1
        hint = ' (outputs exist; --overwrite converts them again)' if counts['skipped'] else ''
        print(f'{split}: {counts["images"]} images, {counts["converted"]} converted, '
              f'{counts["skipped"]} skipped{hint}')
        if not counts['images']:
            print(f'{split}: warning: the index lists no image of this split', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
