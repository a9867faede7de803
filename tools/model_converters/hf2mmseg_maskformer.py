"""Convert a Hugging Face MaskFormer / Mask2Former checkpoint into ours.

Reads a directory written by ``save_pretrained`` (``config.json`` and
``model.safetensors``, sharded ``model-0000x-of-0000y.safetensors`` with their
index, or ``pytorch_model.bin``; ``preprocessor_config.json`` when present for
the normalisation), writes our checkpoint and a config that builds the same
architecture, then builds the model from the written config, loads the
weights and prints the report. Exits with status 1 when a source key was not
converted or the model misses or does not expect a key.

Example:
    python tools/model_converters/hf2mmseg_maskformer.py \\
        mask2former-swin-tiny-coco-panoptic/ m2f_swin-t_coco-panoptic.pth \\
        --out-config m2f_swin-t_coco-panoptic.py
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Any, Dict, List, Mapping, Tuple

import torch

import mmseg_maskformer  # noqa: F401  (registers the models)
from mmseg_maskformer.apis import init_model
from mmseg_maskformer.converters.common import (ConversionResult, checkpoint_dict,
                                                compare_with_model, save_checkpoint_atomic)
from mmseg_maskformer.converters.huggingface import convert_huggingface, hf_architecture
from mmseg_maskformer.converters.huggingface_config import config_from_huggingface
from mmseg_maskformer.engine.checkpoint import load_checkpoint_safe
from mmseg_maskformer.utils.atomic_files import atomic_open


def parse_args(argv: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('hf_dir', help='directory written by save_pretrained')
    parser.add_argument('out', help='output checkpoint (.pth)')
    parser.add_argument('--out-config', required=True, help='output config (.py)')
    return parser.parse_args(argv)


def _read_json(path: str) -> Dict[str, Any]:
    with open(path, encoding='utf-8') as file:
        return json.load(file)


def load_file(path: str) -> Dict[str, torch.Tensor]:
    """Tensors of one ``.safetensors`` file (the format runs no code when read)."""
    try:
        from safetensors.torch import load_file as load_safetensors
    except ImportError:
        raise ImportError(f'reading {path} needs the safetensors package: '
                          'pip install -r requirements/optional.txt') from None
    return load_safetensors(path)


def load_hf_weights(hf_dir: str) -> Mapping[str, torch.Tensor]:
    """Tensors of a ``save_pretrained`` directory (safetensors first, then .bin)."""
    single = osp.join(hf_dir, 'model.safetensors')
    if osp.isfile(single):
        return load_file(single)
    index = osp.join(hf_dir, 'model.safetensors.index.json')
    if osp.isfile(index):
        weights: Dict[str, torch.Tensor] = {}
        for shard in sorted(set(_read_json(index)['weight_map'].values())):
            weights.update(load_file(osp.join(hf_dir, shard)))
        return weights
    binary = osp.join(hf_dir, 'pytorch_model.bin')
    if osp.isfile(binary):
        return load_checkpoint_safe(binary)  # weights_only unpickling
    raise FileNotFoundError(f'{hf_dir} holds no model.safetensors(.index.json) or '
                            'pytorch_model.bin')


def convert(hf_dir: str, out: str, out_config: str) -> Tuple[ConversionResult, Dict[str, List]]:
    """Converts, writes both files and checks them against the built model.

    Returns:
        The conversion result and :func:`compare_with_model`'s report.
    """
    hf_config = _read_json(osp.join(hf_dir, 'config.json'))
    processor_path = osp.join(hf_dir, 'preprocessor_config.json')
    processor = _read_json(processor_path) if osp.isfile(processor_path) else {}
    result = convert_huggingface(load_hf_weights(hf_dir), hf_config)
    text = config_from_huggingface(hf_config, processor.get('image_mean'),
                                   processor.get('image_std'))
    id2label = hf_config.get('id2label') or {}
    meta = dict(source=osp.basename(osp.normpath(hf_dir)),
                converter='hf2mmseg_maskformer', architecture=hf_architecture(hf_config),
                dataset_meta=dict(classes=[id2label[k] for k in sorted(id2label, key=int)]))
    os.makedirs(osp.dirname(osp.abspath(out_config)), exist_ok=True)
    with atomic_open(out_config, 'w') as file:
        file.write(text)
    save_checkpoint_atomic(checkpoint_dict(result, meta), out)

    model = init_model(out_config)
    state_dict = load_checkpoint_safe(out)['state_dict']
    report = compare_with_model(state_dict, model)
    if not report['shape_mismatch']:
        model.load_state_dict(state_dict, strict=False)
    return result, report


def main(argv: List[str]) -> int:
    args = parse_args(argv)
    result, report = convert(args.hf_dir, args.out, args.out_config)
    print(result.summary())
    if result.dropped:
        print('dropped: ' + ', '.join(result.dropped[:10]) +
              (' ...' if len(result.dropped) > 10 else ''))
    for kind, keys in report.items():
        print(f'{kind}: {len(keys)}' + (' (' + ', '.join(keys[:10]) + ')' if keys else ''))
    ok = not result.unmatched and not any(report.values())
    print(f'wrote {args.out} and {args.out_config}' + ('' if ok else ' WITH ERRORS'))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
