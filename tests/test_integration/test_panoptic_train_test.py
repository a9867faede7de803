"""End to end on CPU for the panoptic model: train, then one test run prints PQ, AP and mIoU.

Drives ``tools/train.py`` and ``tools/test.py`` on a tiny synthetic COCO-layout dataset
with a tiny variant of the panoptic demo config, then checks the COCO-format prediction
files of ``--out`` score with the standalone scorer exactly as the metric did.
"""
import json
import re
from pathlib import Path

import pytest

from mmseg_maskformer.datasets.synthetic_coco import generate_synthetic_coco
from mmseg_maskformer.evaluation.functional import pq_compute

from test_train_resume_test import ROOT, run_tool  # same folder, on sys.path

DEMO_CONFIG = (ROOT / 'configs/mask2former/'
               'mask2former_r18-tiny_1xb4-4k_coco-panoptic-synthetic-128x128.py')

TINY_CONFIG = """
_base_ = {base!r}
data_root = {data_root!r}
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='PanopticQualityMetric'),
    dict(type='CocoInstanceMetric', ann_file=data_root + '/annotations/instances_val2017.json',
         metric=['bbox', 'segm']),
    dict(type='IoUMetric', iou_metrics=['mIoU']),
]
test_evaluator = val_evaluator
model = dict(decode_head=dict(transformer_decoder=dict(num_queries=8)),
             test_cfg=dict(object_mask_threshold=0.0))
train_cfg = dict(max_iters=2, val_interval=1000)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
param_scheduler = [dict(type='PolyLR', power=0.9, begin=0, end=2, by_epoch=False)]
"""


@pytest.mark.slow
def test_panoptic_train_then_one_test_run_gives_three_metrics(tmp_path):
    data_root = str(tmp_path / 'synthetic_coco')
    generate_synthetic_coco(data_root, num_train=4, num_val=3, img_size=64, seed=0)
    config = tmp_path / 'tiny_panoptic.py'
    config.write_text(TINY_CONFIG.format(base=str(DEMO_CONFIG), data_root=data_root))
    work_dir = str(tmp_path / 'work')
    run_tool('tools/train.py', str(config), '--work-dir', work_dir)
    out_dir = tmp_path / 'preds'
    proc = run_tool('tools/test.py', str(config), f'{work_dir}/iter_2.pth', '--work-dir',
                    work_dir, '--out', str(out_dir))
    log = proc.stdout + proc.stderr
    for key in ('PQ', 'PQ_th', 'PQ_st', 'coco/segm_mAP', 'coco/bbox_mAP', 'mIoU'):
        assert re.search(rf'\b{re.escape(key)}: \d', log), key

    # the written COCO-format panoptic files score the same PQ with the standalone scorer
    pq_logged = float(re.search(r'\bPQ: ([\d.]+)', log).group(1))
    prefix = out_dir / 'PanopticQualityMetric'
    pred_json = json.loads(Path(f'{prefix}.panoptic.json').read_text())
    assert len(pred_json['annotations']) == 3
    result = pq_compute(f'{data_root}/annotations/panoptic_val2017.json',
                        f'{data_root}/annotations/panoptic_val2017',
                        f'{prefix}.panoptic.json', f'{prefix}.panoptic')
    assert 100 * result['All']['pq'] == pytest.approx(pq_logged, abs=1e-4)
    instance_json = list(out_dir.glob('CocoInstanceMetric*.segm.json'))
    assert instance_json and isinstance(json.loads(instance_json[0].read_text()), list)
