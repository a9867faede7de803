"""tools/analysis_tools/analyze_queries.py end to end on the demo model (random weights)."""
import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mmseg_maskformer.apis import init_model
from mmseg_maskformer.datasets.synthetic import SYNTHETIC_CLASSES, generate_synthetic_ade20k

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / 'tools' / 'analysis_tools' / 'analyze_queries.py'
CONFIG = (ROOT / 'configs' / 'mask2former'
          / 'mask2former_r18-tiny_1xb4-3k_ade20k-synthetic-128x128.py')


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('analyze_queries_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reports_every_class_of_the_analysed_images(tool, tmp_path, capsys):
    data_root = tmp_path / 'data'
    generate_synthetic_ade20k(str(data_root), num_train=1, num_val=3, img_size=64, seed=1)
    checkpoint = tmp_path / 'random.pth'
    torch.save({'state_dict': init_model(str(CONFIG), device='cpu').state_dict()}, checkpoint)
    json_out = tmp_path / 'summary.json'
    assert tool.main([str(CONFIG), str(checkpoint), '--max-images', '2', '--json-out',
                      str(json_out), '--cfg-options',
                      f'test_dataloader.dataset.data_root={data_root}',
                      'test_dataloader.num_workers=0',
                      'test_dataloader.persistent_workers=False']) == 0
    expected = {}
    for path in sorted((data_root / 'annotations' / 'validation').glob('*.png'))[:2]:
        for label in np.unique(cv2.imread(str(path), cv2.IMREAD_UNCHANGED)):
            if label:  # 0 = other, ignored
                expected[int(label) - 1] = expected.get(int(label) - 1, 0) + 1
    summary = json.loads(json_out.read_text())
    assert {int(k): v['segments'] for k, v in summary.items()} == expected
    for stats in summary.values():
        assert 0.0 <= stats['mask_iou'] <= 1.0 and 0.0 <= stats['prob'] <= stats['max_prob']
    out = capsys.readouterr().out
    assert 'class right' in out
    assert all(SYNTHETIC_CLASSES[label] in out for label in expected)


def test_missing_checkpoint_is_a_usage_error(tool, tmp_path):
    with pytest.raises(SystemExit) as exc:
        tool.parse_args([str(CONFIG), str(tmp_path / 'none.pth')])
    assert exc.value.code == 2
