"""Convert ImageNet backbone weights for ``backbone.init_cfg``.

Usage:
    python tools/model_converters/backbone2mmseg_maskformer.py SRC DST.pth
        --source {torchvision,swin,detectron2} [--config CONFIG] [--allow-partial]

Sources:
    torchvision: ResNet / ResNeXt ``.pth`` files of torchvision.
    swin:        the official Swin release (``swin_tiny_patch4_window7_224.pth``)
                 or its Detectron2 copy (``.pkl``).
    detectron2:  ImageNet ``.pkl`` files of the Detectron2 model zoo:
                 ``R-50.pkl`` (torchvision weights), ``R-103.pkl`` (DeepLab stem,
                 for ``ResNetV1c(stem_channels=128)``), MSRA ``R-50.pkl`` /
                 ``R-101.pkl`` and FAIR ``X-101-32x8d.pkl`` in Caffe2 naming.

``.pkl`` files are read by a restricted unpickler (numpy arrays only), other
files by ``torch.load(weights_only=True)``; a ``model`` or ``state_dict``
wrapper is removed. ``DST`` holds ``{'state_dict': ..., 'meta': ...}`` with
backbone keys WITHOUT the ``backbone.`` prefix, so that
``model.backbone.init_cfg = dict(type='Pretrained', checkpoint=DST)`` loads it.
With ``--config`` the converted keys are checked against that config's backbone.
Unmatched source keys (and with ``--config`` missing, unexpected or mis-shaped
parameters) make the command fail without writing ``DST`` unless
``--allow-partial`` is given.
"""
import argparse
import os.path as osp
import sys
import zipfile
from collections.abc import Mapping
from typing import Any, Dict, List

from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmseg_maskformer.converters.backbones import (swin_official_to_mmseg,
                                                   torchvision_resnet_to_mmseg)
from mmseg_maskformer.converters.common import save_checkpoint_atomic as save_atomic
from mmseg_maskformer.converters.common import (ConversionResult, checkpoint_dict,
                                                compare_with_model, unwrap_state_dict)
from mmseg_maskformer.converters.detectron2 import convert_detectron2_backbone
from mmseg_maskformer.engine.checkpoint import (UnsafeCheckpointError, load_checkpoint_safe,
                                                load_pickle_safe)

CONVERTER = 'backbone2mmseg_maskformer'
CONVERTERS = {
    'torchvision': torchvision_resnet_to_mmseg,
    'swin': swin_official_to_mmseg,
    'detectron2': convert_detectron2_backbone,
}


def parse_args() -> argparse.Namespace:
    """Parses the command line."""
    parser = argparse.ArgumentParser(
        description='Convert ImageNet backbone weights (torchvision, official Swin, Detectron2 '
        'model zoo) to mmseg backbone keys for backbone.init_cfg.')
    parser.add_argument('src', help='source weights (.pth or .pkl)')
    parser.add_argument('dst', help='output checkpoint (.pth)')
    parser.add_argument('--source', required=True, choices=sorted(CONVERTERS),
                        help='layout of the source weights')
    parser.add_argument('--config', help='check the result against the backbone of this config')
    parser.add_argument('--allow-partial', action='store_true',
                        help='write the file even if keys are unmatched, missing or unexpected')
    return parser.parse_args()


def load_weights(path: str) -> Dict[str, Any]:
    """Loads a weights file safely and removes a ``model`` / ``state_dict`` wrapper."""
    if path.endswith('.pkl') and not zipfile.is_zipfile(path):
        checkpoint = load_pickle_safe(path)
    else:
        checkpoint = load_checkpoint_safe(path)
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f'{path} holds a {type(checkpoint).__name__}, not a dict of weights')
    checkpoint = unwrap_state_dict(checkpoint, ('state_dict', 'model'))
    weights = {key: value for key, value in checkpoint.items() if not isinstance(value, Mapping)}
    if weights and all(key.startswith('module.') for key in weights):
        weights = {key[len('module.'):]: value for key, value in weights.items()}
    return weights


def check_against_config(result: ConversionResult, config: str) -> Dict[str, List[str]]:
    """Compares the converted keys with the backbone of ``config``."""
    import mmseg_maskformer  # noqa: F401  (registers our modules)
    from mmseg_maskformer.registry import MODELS
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmseg_maskformer'))
    backbone_cfg = cfg.model.backbone
    backbone_cfg.init_cfg = None
    return compare_with_model(result.state_dict, MODELS.build(backbone_cfg))


def main() -> int:
    """Runs the conversion; returns the exit status."""
    args = parse_args()
    print(f'loading {args.src}', flush=True)
    try:
        weights = load_weights(args.src)
    except (UnsafeCheckpointError, ValueError, FileNotFoundError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    print(f'converting {len(weights)} arrays from the {args.source} layout', flush=True)
    result = CONVERTERS[args.source](weights)
    print(result.summary())
    if result.dropped:
        print('dropped on purpose: ' + ', '.join(result.dropped))
    report = dict(missing=[], unexpected=[], shape_mismatch=[])
    if args.config:
        print(f'checking against the backbone of {args.config}', flush=True)
        report = check_against_config(result, args.config)
    issues = [f'{title}: {", ".join(keys)}' for title, keys in (
        ('unmatched source keys', result.unmatched), ('missing in the file', report['missing']),
        ('unexpected in the file', report['unexpected']),
        ('shape mismatches', report['shape_mismatch'])) if keys]
    if issues:
        print('\n'.join(issues))
        if not args.allow_partial:
            print('error: the conversion is not exact; nothing written (use --allow-partial to '
                  'write it anyway)', file=sys.stderr)
            return 1
        print('warning: writing a partial conversion (--allow-partial)', file=sys.stderr)
    meta = dict(converter=CONVERTER, source=osp.basename(args.src), source_layout=args.source,
                unmatched=list(result.unmatched), dropped=list(result.dropped))
    save_atomic(checkpoint_dict(result, meta), args.dst)
    print(f'saved {len(result.state_dict)} tensors to {args.dst} (keys without "backbone.")')
    return 0


if __name__ == '__main__':
    sys.exit(main())
