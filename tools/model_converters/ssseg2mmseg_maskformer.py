"""Convert an sssegmentation MaskFormer checkpoint into ours (what maps).

Usage:
    python tools/model_converters/ssseg2mmseg_maskformer.py SRC.pth DST.pth --config CONFIG
        [--allow-partial] [--cfg-options KEY=VALUE ...]

Loads ``SRC`` (an sssegmentation ``MaskFormer`` checkpoint, weights under
``model``) with ``weights_only=True`` and our allow-list, converts its keys,
builds the model of ``CONFIG`` on CPU and checks the converted tensors
against it. sssegmentation's MaskFormer has its own PPM + FPN pixel decoder
(BatchNorm, 512 channels) that our MaskFormer does not have: those tensors are
always reported as unmatched and our pixel decoder as missing, so a zoo file
converts only with ``--allow-partial`` (backbone and transformer predictor
filled, pixel decoder left to training). Any problem is printed and, without
``--allow-partial``, makes the command fail (exit status 1) without writing
``DST``. ``DST`` is written atomically as ``{'state_dict': ..., 'meta': ...}``.

Example:
    python tools/model_converters/ssseg2mmseg_maskformer.py \\
        maskformer_swintiny_ade20k.pth checkpoints/maskformer_swin-t_ssseg_partial.pth \\
        --config configs/maskformer/maskformer_swin-t_8xb2-130e_ade20k-512x512.py --allow-partial
"""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

from mmengine.config import DictAction

from mmseg_maskformer.converters.common import fit_and_save
from mmseg_maskformer.converters.sssegmentation import (
    convert_sssegmentation_maskformer, sssegmentation_state_dict, unmatched_pixel_decoder_keys)
from mmseg_maskformer.engine.checkpoint import UnsafeCheckpointError, load_checkpoint_safe

CONVERTER = 'ssseg2mmseg_maskformer'

PIXEL_DECODER_NOTE = (
    'note: sssegmentation\'s MaskFormer pixel decoder (ppm_net, lateral_convs, fpn_convs, '
    'decoder_mask: PPM + FPN with BatchNorm, 512 channels) has no counterpart in our '
    'FPNPixelDecoder (GroupNorm, 256 channels); its tensors are unmatched and our '
    'decode_head.pixel_decoder.* parameters stay unfilled')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parses the command line."""
    parser = argparse.ArgumentParser(
        description='Convert an sssegmentation MaskFormer checkpoint (.pth) to a checkpoint '
        'of this toolbox, checked against the model of a config.')
    parser.add_argument('src', help='sssegmentation checkpoint (.pth)')
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
        weights = sssegmentation_state_dict(load_checkpoint_safe(args.src))
    except (UnsafeCheckpointError, ValueError, FileNotFoundError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    print(f'read {len(weights)} source tensors')
    result = convert_sssegmentation_maskformer(weights)
    print(result.summary())
    if result.dropped:
        print('dropped on purpose: ' + ', '.join(result.dropped))
    if unmatched_pixel_decoder_keys(result):
        print(PIXEL_DECODER_NOTE)

    meta = dict(converter=CONVERTER, source=osp.basename(args.src))
    return fit_and_save(result, args.config, args.dst, meta, allow_partial=args.allow_partial,
                        cfg_options=args.cfg_options)


if __name__ == '__main__':
    sys.exit(main())
