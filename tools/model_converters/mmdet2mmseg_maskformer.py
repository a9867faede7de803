"""Convert an mmdetection / mmsegmentation Mask2Former checkpoint into ours.

Usage:
    python tools/model_converters/mmdet2mmseg_maskformer.py SRC.pth DST.pth --config CONFIG
        [--allow-partial] [--cfg-options KEY=VALUE ...]

Loads ``SRC`` (an mmdetection 3.x / 2.x ``Mask2Former`` detector checkpoint,
head under ``panoptic_head.``, or an mmsegmentation 1.x one, head under
``decode_head.``) with ``weights_only=True`` and our allow-list (a file holding
anything else is refused), converts its keys, builds the model of ``CONFIG``
on CPU and checks that the converted tensors fit it exactly. Any source key
left unmatched and any missing, unexpected or mis-shaped parameter is printed
and makes the command fail (exit status 1) without writing ``DST``, unless
``--allow-partial`` downgrades it to a warning. ``DST`` is written atomically
as ``{'state_dict': ..., 'meta': ...}``.

Example:
    python tools/model_converters/mmdet2mmseg_maskformer.py \\
        mask2former_r50_8xb2-lsj-50e_coco-panoptic_20230118_125535-54df384a.pth \\
        checkpoints/mask2former_r50_8xb2-lsj-50e_coco-panoptic.pth \\
        --config configs/mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py
"""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

from mmengine.config import DictAction

from mmseg_maskformer.converters.common import fit_and_save
from mmseg_maskformer.converters.mmdet_checkpoint import (checkpoint_state_dict,
                                                          convert_mmdet_mask2former)
from mmseg_maskformer.engine.checkpoint import UnsafeCheckpointError, load_checkpoint_safe

CONVERTER = 'mmdet2mmseg_maskformer'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parses the command line."""
    parser = argparse.ArgumentParser(
        description='Convert an mmdetection/mmsegmentation Mask2Former checkpoint (.pth) to a '
        'checkpoint of this toolbox, checked against the model of a config.')
    parser.add_argument('src', help='mmdet / mmseg checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint (.pth)')
    parser.add_argument('--config', required=True, help='config whose model the weights are for')
    parser.add_argument('--allow-partial', action='store_true',
                        help='write the file even if keys are unmatched, missing or unexpected')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, as key=value pairs')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the conversion; returns the exit status."""
    args = parse_args(argv)
    print(f'loading {args.src}', flush=True)
    try:
        weights = checkpoint_state_dict(load_checkpoint_safe(args.src))
        result = convert_mmdet_mask2former(weights)
    except (UnsafeCheckpointError, ValueError, FileNotFoundError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    print(f'read {len(weights)} source tensors')
    print(result.summary())

    meta = dict(converter=CONVERTER, source=osp.basename(args.src))
    return fit_and_save(result, args.config, args.dst, meta, allow_partial=args.allow_partial,
                        cfg_options=args.cfg_options)


if __name__ == '__main__':
    sys.exit(main())
