"""Generate the synthetic panoptic dataset in the official COCO layouts.

Example::

    python tools/dataset_converters/synthetic_coco.py data/synthetic_coco \
        --num-train 6000 --num-val 100 --img-size 128 --seed 0

The output (``{train,val}2017/*.jpg``, ``annotations/panoptic_{train,val}2017.json``
with its PNG folders and ``annotations/instances_{train,val}2017.json``) is read
by the COCO panoptic and instance datasets unchanged. Running the command again
with the same arguments reuses the existing data.
"""
import argparse
import sys
from typing import List, Optional

from mmseg_maskformer.datasets.synthetic import print_progress
from mmseg_maskformer.datasets.synthetic_coco import (COCO_THING_SUBSET, SYNTHETIC_COCO_CATEGORIES,
                                                      generate_synthetic_coco)

DEFAULT_ROOT = 'data/synthetic_coco'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse and validate the command line."""
    parser = argparse.ArgumentParser(
        description='Generate a synthetic panoptic dataset in the COCO layouts')
    parser.add_argument('out_root', nargs='?', default=DEFAULT_ROOT,
                        help=f'output dataset root (default: {DEFAULT_ROOT})')
    parser.add_argument('--num-train', type=int, default=6000, help='train2017 images')
    parser.add_argument('--num-val', type=int, default=100, help='val2017 images')
    parser.add_argument('--img-size', '--size', dest='img_size', type=int, default=128,
                        help='image side in pixels (>= 32)')
    parser.add_argument('--seed', type=int, default=0, help='random seed (>= 0)')
    parser.add_argument('--jpeg-quality', type=int, default=95, help='JPEG quality (0-100)')
    args = parser.parse_args(argv)
    if args.num_train < 0 or args.num_val < 0:
        parser.error('--num-train and --num-val must be >= 0')
    if args.num_train + args.num_val == 0:
        parser.error('at least one of --num-train and --num-val must be positive')
    if args.img_size < 32:
        parser.error(f'--img-size must be at least 32, got {args.img_size}')
    if args.seed < 0:
        parser.error(f'--seed must be >= 0, got {args.seed}')
    if not 0 <= args.jpeg_quality <= 100:
        parser.error(f'--jpeg-quality must lie in [0, 100], got {args.jpeg_quality}')
    return args


def format_summary(summary: dict) -> str:
    """Human-readable segment counts and class pixel frequencies of every split."""
    lines = []
    for split, stats in summary['splits'].items():
        lines.append(f'{split}: {stats["num_images"]} images, {stats["num_segments"]} segments '
                     f'({stats["num_stuff_segments"]} stuff, {stats["num_instances"]} thing '
                     f'instances, {stats["num_crowd"]} crowd), '
                     f'{100 * stats["void_fraction"]:.2f}% pixels void')
        for cat_id, name in SYNTHETIC_COCO_CATEGORIES.items():
            kind = 'thing' if cat_id in COCO_THING_SUBSET else 'stuff'
            fraction = stats['class_pixel_fraction'][name]
            lines.append(f'  {cat_id:>3d} {name:<20s} {kind}  {100 * fraction:6.2f}%')
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the process exit status."""
    args = parse_args(argv)
    print(f'Synthetic COCO-layout panoptic dataset -> {args.out_root} '
          f'(train2017={args.num_train}, val2017={args.num_val}, size={args.img_size}, '
          f'seed={args.seed})')
    try:
        summary = generate_synthetic_coco(args.out_root, num_train=args.num_train,
                                          num_val=args.num_val, img_size=args.img_size,
                                          seed=args.seed, jpeg_quality=args.jpeg_quality,
                                          progress=print_progress)
    except (FileExistsError, OSError, ValueError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    action = 'generated' if summary['generated'] else 'already present, reused'
    print(f'Dataset {action}. Segments and class pixel frequencies (COCO id, name):')
    print(format_summary(summary))
    return 0


if __name__ == '__main__':
    sys.exit(main())
