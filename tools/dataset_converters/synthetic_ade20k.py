"""Generate the synthetic semantic-segmentation dataset in the ADE20K layout.

Example::

    python tools/dataset_converters/synthetic_ade20k.py data/synthetic_ade20k \
        --num-train 6000 --num-val 100 --size 128 --seed 0

The output is read by mmseg's ``ADE20KDataset`` (``reduce_zero_label=True``).
Running the command again with the same arguments reuses the existing data.
"""
import argparse
import sys
from typing import List, Optional

from mmseg_maskformer.datasets.synthetic import (SYNTHETIC_CLASSES, generate_synthetic_ade20k,
                                                print_progress)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse and validate the command line."""
    parser = argparse.ArgumentParser(
        description='Generate a synthetic semantic-segmentation dataset in the ADE20K layout')
    parser.add_argument('out_root', help='output dataset root')
    parser.add_argument('--num-train', type=int, default=6000, help='training images')
    parser.add_argument('--num-val', type=int, default=100, help='validation images')
    parser.add_argument('--size', type=int, default=128, help='image side in pixels (>= 32)')
    parser.add_argument('--seed', type=int, default=0, help='random seed (>= 0)')
    args = parser.parse_args(argv)
    if args.num_train < 0 or args.num_val < 0:
        parser.error('--num-train and --num-val must be >= 0')
    if args.num_train + args.num_val == 0:
        parser.error('at least one of --num-train and --num-val must be positive')
    if args.size < 32:
        parser.error(f'--size must be at least 32, got {args.size}')
    if args.seed < 0:
        parser.error(f'--seed must be >= 0, got {args.seed}')
    return args


def format_summary(summary: dict) -> str:
    """Human-readable table of the class pixel frequencies of every split."""
    lines = []
    for split, stats in summary['splits'].items():
        lines.append(f'{split}: {stats["num_images"]} images, '
                     f'{100 * stats["ignore_fraction"]:.2f}% pixels ignored')
        for index, name in SYNTHETIC_CLASSES.items():
            fraction = stats['class_pixel_fraction'][name]
            lines.append(f'  {index:>3d} {name:<10s} {100 * fraction:6.2f}%')
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the process exit status."""
    args = parse_args(argv)
    print(f'Synthetic ADE20K-layout dataset -> {args.out_root} '
          f'(train={args.num_train}, val={args.num_val}, size={args.size}, seed={args.seed})')
    try:
        summary = generate_synthetic_ade20k(args.out_root, num_train=args.num_train,
                                            num_val=args.num_val, img_size=args.size,
                                            seed=args.seed, progress=print_progress)
    except (FileExistsError, OSError, ValueError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    action = 'generated' if summary['generated'] else 'already present, reused'
    print(f'Dataset {action}. Class pixel frequencies (ADE20K index, name):')
    print(format_summary(summary))
    return 0


if __name__ == '__main__':
    sys.exit(main())
