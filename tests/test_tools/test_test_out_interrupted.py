"""``tools/test.py --out DIR`` survives an interruption of the writer: only complete files.

A tiny segmentor (random weights) is tested on two images through the same
``build_cfg`` and runner as ``tools/test.py``; the second PNG save is cut after
a few bytes by a Ctrl-C. The first prediction must be complete and no partial
file (nor temporary file) may remain; a rerun then writes both.
"""
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_tools_cli import TOOLS, _load_tool, _write_tiny_setup


def run_test_tool(monkeypatch, tmp_path: Path, config: Path, out: Path, name: str) -> None:
    monkeypatch.syspath_prepend(str(TOOLS))
    test_tool = _load_tool(TOOLS / 'test.py', 'test_tool_interrupted')
    checkpoint = tmp_path / 'unused.pth'
    checkpoint.touch()
    monkeypatch.setattr(sys, 'argv', ['test.py', str(config), str(checkpoint), '--out',
                                      str(out), '--work-dir', str(tmp_path / 'work')])
    cfg = test_tool.build_cfg(test_tool.parse_args())
    assert cfg.test_evaluator.type == 'AtomicIoUMetric'  # mmseg's IoUMetric, atomic PNGs
    cfg.load_from = None  # random weights: the files matter, not the numbers
    cfg.experiment_name = name
    cfg.visualizer.name = name
    try:
        test_tool.build_runner(cfg).test()
    finally:
        sys.modules.pop('train', None)


def test_interrupted_writer_leaves_only_complete_files(tmp_path, monkeypatch):
    out = tmp_path / 'preds'
    config = _write_tiny_setup(tmp_path)  # two 32x32 images, three classes
    real_save = Image.Image.save
    saves = []

    def interrupted_save(self, fp, *args, **kwargs):
        saves.append(1)
        if len(saves) == 2:
            fp.write(b'\x89PNG\r\n\x1a\n')  # a few bytes, then Ctrl-C
            raise KeyboardInterrupt
        return real_save(self, fp, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(Image.Image, 'save', interrupted_save)
        with pytest.raises(KeyboardInterrupt):
            run_test_tool(patch, tmp_path, config, out, 'interrupted_out')
    assert sorted(p.name for p in out.iterdir()) == ['0.png']  # no partial, no temporary
    with Image.open(out / '0.png') as png:
        first = np.asarray(png)
    assert first.shape == (32, 32) and set(np.unique(first)) <= {0, 1, 2}

    run_test_tool(monkeypatch, tmp_path, config, out, 'rerun_out')
    assert sorted(p.name for p in out.iterdir()) == ['0.png', '1.png']
    with Image.open(out / '1.png') as png:
        assert np.asarray(png).shape == (32, 32)
