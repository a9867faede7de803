"""Official (Detectron2) checkpoints converted with ``convert_detectron2`` match
the Hugging Face models they were converted to.

No official checkpoint is downloaded: a tiny random Hugging Face model's state
dict is renamed into the exact Detectron2 key names and shapes by the reverse
of the ``transformers`` conversion scripts' mapping (``hf_reference``), pickled
as numpy arrays under ``model`` like a released ``.pkl``, loaded with the
restricted unpickler and converted. Our model must then reproduce the Hugging
Face model's class and mask logits (which the conversion scripts check against
the official implementation to 1e-4).
"""
import pickle
import sys
from pathlib import Path
from typing import Any, Dict

import torch
from mmengine.config import Config

sys.path.insert(0, str(Path(__file__).parent))
import hf_reference as ref  # noqa: E402

from mmseg_maskformer.converters.common import compare_with_model  # noqa: E402
from mmseg_maskformer.converters.detectron2 import (convert_detectron2,  # noqa: E402
                                                    load_detectron2_checkpoint)
from mmseg_maskformer.converters.huggingface_config import model_dict_from_huggingface  # noqa
from mmseg_maskformer.registry import MODELS  # noqa: E402

TOL = 1e-4


def _write_pkl(weights: Dict[str, Any], path: Path) -> Path:
    """A Detectron2-style ``.pkl``: numpy arrays under ``model`` (protocol 2)."""
    with open(path, 'wb') as file:
        pickle.dump({'model': weights, '__author__': 'test', 'matching_heuristics': True}, file,
                    protocol=2)
    return path


def _check(hf_model: torch.nn.Module, model_cfg: dict, tmp_path: Path, architecture: str,
           backbone: str) -> None:
    """Converts the Detectron2 form of ``hf_model`` and compares the logits."""
    weights = ref.hf_to_detectron2(hf_model)
    loaded = load_detectron2_checkpoint(str(_write_pkl(weights, tmp_path / 'model.pkl')))
    assert set(loaded) == set(weights)
    result = convert_detectron2(loaded, architecture=architecture, backbone=backbone)
    assert result.unmatched == []
    ours = MODELS.build(Config(dict(model=model_cfg)).model).eval()
    report = compare_with_model(result.state_dict, ours)
    assert report == dict(missing=[], unexpected=[], shape_mismatch=[])
    ours.load_state_dict(result.state_dict, strict=False)
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = hf_model(pixel_values=x)
        cls_logits, mask_logits = ours(x, mode='tensor')
    assert (cls_logits - expected.class_queries_logits).abs().max() < TOL
    assert (mask_logits - expected.masks_queries_logits).abs().max() < TOL
    assert mask_logits.std() > 1e-3  # not a degenerate, constant output


def test_mask2former_swin(tmp_path):
    hf_model = ref.build(ref.mask2former_config(ref.swin_backbone()))
    cfg = model_dict_from_huggingface(hf_model.config.to_dict())
    _check(hf_model, cfg, tmp_path, 'mask2former', 'swin')


def test_mask2former_r50(tmp_path):
    hf_model = ref.build(ref.mask2former_config(ref.resnet_config()))
    cfg = model_dict_from_huggingface(hf_model.config.to_dict())
    _check(hf_model, cfg, tmp_path, 'mask2former', 'resnet')


def test_maskformer_r50_v1_layout(tmp_path):
    hf_model = ref.build(ref.maskformer_config(ref.resnet_config()))
    weights = ref.hf_to_detectron2(hf_model)
    assert 'sem_seg_head.adapter_1.weight' in weights  # no ``pixel_decoder.`` prefix
    cfg = model_dict_from_huggingface(hf_model.config.to_dict())
    _check(hf_model, cfg, tmp_path, 'maskformer', 'resnet')


def test_maskformer_r101c_deep_stem(tmp_path):
    """Detectron2 ``R-103``: three-conv stem with 128 (here 32) channels, res5
    multi-grid dilations 1, 2, 4 with the stride kept; our side is mmseg's
    ``ResNetV1c`` as in ``configs/maskformer/maskformer_r101c_*``."""
    stem = 32
    hf_model = ref.build(ref.maskformer_config(ref.resnet_config((3, 4, 23, 3), stem=stem)))
    ref.use_deep_stem(hf_model, stem)
    ref.dilate_last_stage(hf_model, (1, 2, 4))
    ref.randomize_(hf_model, seed=1)
    weights = ref.hf_to_detectron2(hf_model)
    assert {'backbone.stem.conv3.weight', 'backbone.stem.conv3.norm.running_var'} <= set(weights)
    cfg = model_dict_from_huggingface(hf_model.config.to_dict())
    assert cfg['backbone']['depth'] == 101
    cfg['backbone'].update(type='ResNetV1c', stem_channels=stem, multi_grid=(1, 2, 4))
    _check(hf_model, cfg, tmp_path, 'maskformer', 'resnet_deep_stem')


def test_unknown_key_is_reported(tmp_path):
    hf_model = ref.build(ref.mask2former_config(ref.swin_backbone()))
    weights = ref.hf_to_detectron2(hf_model)
    weights['sem_seg_head.predictor.some_new_layer.weight'] = weights[
        'sem_seg_head.predictor.class_embed.weight']
    result = convert_detectron2(weights, architecture='mask2former', backbone='swin')
    assert result.unmatched == ['sem_seg_head.predictor.some_new_layer.weight']
