"""tools/analysis_tools/eval_panoptic.py run as a command on the COCO panoptic fixture.

The four command lines start together once per module (imports dominate their time).
"""
import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest

from mmseg_maskformer.evaluation.functional import (pq_compute, read_panoptic_png,
                                                    write_panoptic_png)

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / 'tools' / 'analysis_tools' / 'eval_panoptic.py'
SAMPLE = REPO / 'tests' / 'data' / 'coco_panoptic_sample'
GT_JSON = SAMPLE / 'panoptic_examples.json'
GT_DIR = SAMPLE / 'panoptic'


def perturbed_copy(root: Path) -> None:
    """``root/pred.json`` + ``root/pred/``: the GT with one person removed (made void)."""
    data = json.loads(GT_JSON.read_text())
    pred = copy.deepcopy(data)
    (root / 'pred').mkdir()
    for ann in pred['annotations']:
        ids = read_panoptic_png(GT_DIR / ann['file_name'])
        if ann['image_id'] == 142238:
            person = next(s for s in ann['segments_info']
                          if s['category_id'] == 1 and not s['iscrowd'])
            ann['segments_info'].remove(person)
            ids[ids == person['id']] = 0
        write_panoptic_png(root / 'pred' / ann['file_name'], ids)
    (root / 'pred.json').write_text(json.dumps(pred))
    # a prediction listing a segment its PNG lacks
    bad = copy.deepcopy(data)
    bad['annotations'][1]['segments_info'].append({'id': 424242, 'category_id': 1})
    (root / 'bad.json').write_text(json.dumps(bad))


@pytest.fixture(scope='module')
def runs(tmp_path_factory) -> Dict[str, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp('eval_panoptic')
    perturbed_copy(root)
    commands = {
        'self': [GT_JSON, GT_DIR, GT_JSON, GT_DIR, '--classwise', '--json-out',
                 root / 'self.json'],
        'perturbed': [GT_JSON, GT_DIR, root / 'pred.json', root / 'pred', '--json-out',
                      root / 'perturbed.json'],
        'missing_dir': [GT_JSON, GT_DIR, GT_JSON, root / 'absent'],
        'inconsistent': [GT_JSON, GT_DIR, root / 'bad.json', GT_DIR],
    }
    procs = {name: subprocess.Popen([sys.executable, str(TOOL)] + [str(a) for a in args],
                                    cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
             for name, args in commands.items()}
    done = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    done['root'] = root
    return done


def test_gt_against_itself(runs):
    run = runs['self']
    assert run.returncode == 0, run.stderr
    results = json.loads((runs['root'] / 'self.json').read_text())
    for name in ('All', 'Things', 'Stuff'):
        assert results[name]['pq'] == results[name]['sq'] == results[name]['rq'] == 1.0
    assert results['All']['n'] == results['Things']['n'] + results['Stuff']['n'] == 8
    assert results['per_class']['1'] == {'pq': 1.0, 'sq': 1.0, 'rq': 1.0}
    assert len(results['per_class']) == 133
    assert '| All    | 100.000' in run.stdout and '| person' in run.stdout


def test_perturbed_copy_equals_pq_compute(runs):
    run = runs['perturbed']
    assert run.returncode == 0, run.stderr
    results = json.loads((runs['root'] / 'perturbed.json').read_text())
    expected = pq_compute(GT_JSON, GT_DIR, runs['root'] / 'pred.json', runs['root'] / 'pred')
    expected['per_class'] = {str(k): v for k, v in expected['per_class'].items()}
    assert results == expected
    assert results['All']['pq'] < 1.0 and results['Stuff']['pq'] == 1.0
    assert '| person' not in run.stdout  # no per-class table without --classwise


def test_missing_folder_is_a_usage_error(runs):
    run = runs['missing_dir']
    assert run.returncode == 2
    assert 'prediction PNG folder' in run.stderr and 'does not exist' in run.stderr
    assert 'Traceback' not in run.stderr


def test_inconsistent_prediction_is_reported_without_traceback(runs):
    run = runs['inconsistent']
    assert run.returncode == 1
    assert run.stderr.strip().endswith(
        'error: image 439180: segment ids [424242] are listed in the prediction segments_info '
        'but do not occur in its PNG')
    assert 'Traceback' not in run.stderr
