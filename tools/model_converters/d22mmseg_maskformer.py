"""Convert an official Detectron2 MaskFormer / Mask2Former checkpoint.

Usage:
    python tools/model_converters/d22mmseg_maskformer.py SRC.pkl DST.pth --config CONFIG
        [--architecture {mask2former,maskformer,per_pixel_baseline,per_pixel_baseline_plus}]
        [--backbone {resnet,resnet_deep_stem,swin}] [--allow-partial]

Loads ``SRC`` with a restricted unpickler (numpy arrays only: a file holding
anything else is refused), converts its keys (architecture and backbone are
detected unless given), builds the model of ``CONFIG`` on CPU and checks that
the converted tensors fit it exactly. Any source key left unmatched and any
missing, unexpected or mis-shaped parameter is printed and makes the command
fail (exit status 1) without writing ``DST``, unless ``--allow-partial``
downgrades it to a warning. ``DST`` is written atomically as
``{'state_dict': ..., 'meta': ...}``, ready for ``load_from`` or
``tools/test.py CONFIG DST``.
"""
import argparse
import os.path as osp
import sys

from mmengine.config import DictAction

from mmseg_maskformer.converters.common import fit_and_save
from mmseg_maskformer.converters.detectron2 import (ARCHITECTURES, BACKBONES, convert_detectron2,
                                                    detect_architecture, detect_backbone,
                                                    load_detectron2_checkpoint,
                                                    upgrade_head_keys)
from mmseg_maskformer.engine.checkpoint import UnsafeCheckpointError

CONVERTER = 'd22mmseg_maskformer'


def parse_args() -> argparse.Namespace:
    """Parses the command line."""
    parser = argparse.ArgumentParser(
        description='Convert an official Detectron2 MaskFormer/Mask2Former checkpoint (.pkl) '
        'to a checkpoint of this toolbox, checked against the model of a config.')
    parser.add_argument('src', help='Detectron2 checkpoint (.pkl)')
    parser.add_argument('dst', help='output checkpoint (.pth)')
    parser.add_argument('--config', required=True, help='config whose model the weights are for')
    parser.add_argument('--architecture', choices=ARCHITECTURES,
                        help='head architecture (detected from the keys by default)')
    parser.add_argument('--backbone', choices=[b for b in BACKBONES if b != 'caffe2'],
                        help='backbone layout (detected from the keys by default)')
    parser.add_argument('--allow-partial', action='store_true',
                        help='write the file even if keys are unmatched, missing or unexpected')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, as key=value pairs')
    return parser.parse_args()


def main() -> int:
    """Runs the conversion; returns the exit status."""
    args = parse_args()
    print(f'loading {args.src}', flush=True)
    try:
        weights = load_detectron2_checkpoint(args.src)
        architecture = args.architecture or detect_architecture(upgrade_head_keys(weights)[0])
        backbone = args.backbone or detect_backbone(
            key for key in weights if key.startswith('backbone.'))
    except (UnsafeCheckpointError, ValueError, FileNotFoundError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    print(f'converting {len(weights)} arrays (architecture: {architecture}, '
          f'backbone: {backbone})', flush=True)
    result = convert_detectron2(weights, architecture=architecture, backbone=backbone)
    print(result.summary())
    if result.dropped:
        print('dropped on purpose: ' + ', '.join(result.dropped))

    meta = dict(converter=CONVERTER, source=osp.basename(args.src), architecture=architecture,
                backbone=backbone)
    return fit_and_save(result, args.config, args.dst, meta, allow_partial=args.allow_partial,
                        cfg_options=args.cfg_options)


if __name__ == '__main__':
    sys.exit(main())
