"""Prepare Cityscapes train-id label maps for ``CityscapesDataset``.

Example::

    python tools/dataset_converters/cityscapes.py data/cityscapes --splits train val

Writes ``*_gtFine_labelTrainIds.png`` (19 classes, 255 ignored) next to every
``gtFine/{split}/{city}/*_gtFine_labelIds.png``, with the label-id to train-id
table of cityscapesscripts.
"""
import argparse
import sys
from typing import List, Optional

from mmseg_maskformer.datasets.converters.semantic_labels import convert_cityscapes
from mmseg_maskformer.utils.progress import progress_printer


def main(argv: Optional[List[str]] = None) -> int:
    """Converts the requested splits; returns the exit status."""
    parser = argparse.ArgumentParser(description='Prepare Cityscapes train-id label maps')
    parser.add_argument('root', help='Cityscapes root (gtFine/, leftImg8bit/)')
    parser.add_argument('--splits', nargs='+', default=['train', 'val'],
                        choices=['train', 'val', 'test'])
    args = parser.parse_args(argv)
    try:
        counts = convert_cityscapes(args.root, args.splits, progress=progress_printer('label maps'))
    except (FileNotFoundError, ValueError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    print(', '.join(f'{split}: {counts[split]} label maps' for split in args.splits))
    if counts['unknown_pixels']:
        print(f'warning: {counts["unknown_pixels"]} pixels held label ids outside 0..33; '
              'they were written as 255 (ignored)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
