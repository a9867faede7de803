"""Every config builds; full-size models have the paper's parameter counts."""
from pathlib import Path

import pytest
import torch
from mmengine import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from mmseg.structures import SegDataSample

from mmseg_maskformer.registry import MODELS

CONFIG_DIR = Path(__file__).resolve().parents[2] / 'configs'
CONFIGS = sorted(p for p in CONFIG_DIR.rglob('*.py') if '_base_' not in p.parts)


def build(config: Path, **overrides) -> torch.nn.Module:
    init_default_scope('mmseg_maskformer')
    cfg = Config.fromfile(str(config))
    cfg.merge_from_dict(overrides)
    return MODELS.build(cfg.model)


def num_params(model: torch.nn.Module) -> float:
    return sum(p.numel() for p in model.parameters()) / 1e6


@pytest.mark.parametrize('config', CONFIGS, ids=lambda p: p.name)
def test_config_builds_tiny_and_runs(config):
    """Build with a tiny head and run one loss step and one prediction at 64x64."""
    model = build(config, **{
        'model.backbone.init_cfg': None,
        'model.decode_head.transformer_decoder.num_queries': 4,
        'model.decode_head.criterion.num_points': 64,
        'model.decode_head.criterion.matcher.num_points': 64,
    })
    num_classes = model.decode_head.num_classes
    inputs = torch.randn(2, 3, 64, 64)
    samples = []
    for b in range(2):
        masks = torch.zeros(2, 64, 64, dtype=torch.bool)
        masks[0, :32] = True
        masks[1, 32:] = True
        sample = SegDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                                             batch_input_shape=(64, 64)))
        sample.gt_instances = InstanceData(labels=torch.tensor([b, num_classes - 1]),
                                           masks=masks)
        samples.append(sample)
    losses = model(inputs, samples, mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    model.eval()
    with torch.no_grad():
        preds = model(inputs, samples, mode='predict')
    assert preds[0].pred_sem_seg.data.shape == (1, 64, 64)
    assert int(preds[0].pred_sem_seg.data.max()) < num_classes


@pytest.mark.parametrize('name,expected', [
    ('mask2former_r50_8xb2-160k_ade20k-512x512.py', 44.0),
    ('mask2former_swin-t_8xb2-160k_ade20k-512x512.py', 47.4),
])
def test_full_size_parameter_count(name, expected):
    model = build(CONFIG_DIR / 'mask2former' / name, **{'model.backbone.init_cfg': None})
    assert abs(num_params(model) - expected) <= 0.3, num_params(model)
