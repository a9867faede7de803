"""Prepare COCO-Stuff-10K from its raw release for ``COCOStuffDataset``.

Example::

    python tools/dataset_converters/coco_stuff10k.py data/coco_stuff10k

Reads ``images/*.jpg``, ``annotations/*.mat`` and ``imageLists/{train,test}.txt``
(cocostuff-10k-v1.1.zip) and writes ``images/{train2014,test2014}/`` and
``annotations/{train2014,test2014}/*_labelTrainIds.png`` (0 unlabelled, 1..171)
under the root or ``--out-dir``.
"""
import argparse
import sys
from typing import List, Optional

from mmseg_maskformer.datasets.converters.semantic_labels import convert_coco_stuff10k
from mmseg_maskformer.utils.progress import progress_printer


def main(argv: Optional[List[str]] = None) -> int:
    """Converts the release; returns the exit status."""
    parser = argparse.ArgumentParser(description='Prepare COCO-Stuff-10K label maps')
    parser.add_argument('root', help='raw release folder (images/, annotations/, imageLists/)')
    parser.add_argument('--out-dir', help='output root (default: the release folder)')
    args = parser.parse_args(argv)
    try:
        counts = convert_coco_stuff10k(args.root, args.out_dir, progress=progress_printer('images'))
    except (FileNotFoundError, KeyError, ValueError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    print(f'{counts["train"]} train and {counts["test"]} test images converted')
    if counts['unknown_pixels']:
        print(f'warning: {counts["unknown_pixels"]} pixels held values that are not '
              'COCO-Stuff ids; they were written as unlabelled (0)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
