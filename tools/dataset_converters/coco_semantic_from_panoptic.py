"""Semantic label maps from COCO panoptic annotations.

Example::

    python tools/dataset_converters/coco_semantic_from_panoptic.py \
        data/coco/annotations/panoptic_val2017.json data/coco/panoptic_val2017 \
        data/coco/panoptic_semseg_val2017

One PNG per image with contiguous labels 0..132 in the JSON's category order
and 255 for void, as the official preparation script writes them (crowd
segments keep their class). The panoptic configs derive these maps on the fly;
the files are for semantic-only configs and external tools.
"""
import argparse
import sys
from typing import List, Optional

from mmseg_maskformer.datasets.converters.semantic_labels import convert_coco_panoptic_semantic
from mmseg_maskformer.utils.progress import progress_printer


def main(argv: Optional[List[str]] = None) -> int:
    """Converts one split; returns the exit status."""
    parser = argparse.ArgumentParser(description='COCO panoptic -> semantic label maps')
    parser.add_argument('panoptic_json', help='panoptic_{split}.json')
    parser.add_argument('panoptic_dir', help='folder of its PNGs')
    parser.add_argument('out_dir', help='output folder, e.g. panoptic_semseg_val2017')
    args = parser.parse_args(argv)
    try:
        counts = convert_coco_panoptic_semantic(args.panoptic_json, args.panoptic_dir,
                                                args.out_dir, progress=progress_printer('images'))
    except (FileNotFoundError, ValueError, KeyError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    print(f'{counts["images"]} semantic maps ({counts["classes"]} classes, 255 = void) '
          f'in {args.out_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
