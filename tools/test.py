"""Test (and evaluate) a trained segmentor.

Usage:
    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out DIR] [--show]
        [--format-only] [--show-dir DIR] [--wait-time SECONDS] [--tta]
        [--cfg-options KEY=VALUE ...]
        [--launcher {none,pytorch,slurm,mpi}]

Runs the test loop of the config on CHECKPOINT and prints the metrics of its
``test_evaluator``. ``--out DIR`` keeps the evaluation and also saves the
predictions into DIR; ``--show-dir DIR`` saves one overlay picture per test
image. For several GPUs or nodes use ``tools/dist_test.sh`` or
``tools/slurm_test.sh``.
"""
import argparse
import os.path as osp

from mmengine.config import Config

# tools/ is on sys.path when a tool runs as a script.
from train import (add_common_args, build_runner, close_distributed, load_cfg,
                   parse_common_args)


def parse_args() -> argparse.Namespace:
    """Parses the command line."""
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a segmentor.',
        epilog='Example: python tools/test.py CONFIG work_dirs/exp/iter_160000.pth '
        '--show-dir vis')
    parser.add_argument('config', help='path of the test config file')
    parser.add_argument(
        'checkpoint', help='checkpoint file (a local path or a URL such as https://...)')
    parser.add_argument(
        '--work-dir', help='directory for the logs and the json file of the metrics')
    parser.add_argument(
        '--out',
        metavar='DIR',
        help='also save the predictions into DIR (semantic PNGs; COCO-format panoptic '
        'PNG + JSON and instance JSON); the metrics are still computed')
    parser.add_argument(
        '--format-only',
        action='store_true',
        help='with --out: only write the prediction files, compute no metric (for '
        'splits without ground truth, e.g. an evaluation server)')
    parser.add_argument('--show', action='store_true', help='show the predictions in a window')
    parser.add_argument(
        '--show-dir',
        metavar='DIR',
        help='save the painted predictions (one picture per test image) under DIR; a '
        'relative DIR is taken inside the work dir')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='seconds each picture stays with --show')
    parser.add_argument(
        '--tta',
        action='store_true',
        help='test-time augmentation with tta_pipeline and tta_model of the config')
    add_common_args(parser, 'testing')
    args = parse_common_args(parser)
    if args.format_only and args.out is None:
        parser.error('--format-only needs --out DIR')
    if '://' not in args.checkpoint and not osp.isfile(args.checkpoint):
        parser.error(f'checkpoint file {args.checkpoint} does not exist')
    return args


def trigger_visualization_hook(cfg: Config, args: argparse.Namespace) -> None:
    """Turns on drawing in the ``visualization`` default hook.

    With ``--show-dir`` the visualizer saves its pictures under that folder
    (inside ``cfg.work_dir`` if the path is relative), in
    ``<DIR>/vis_data/vis_image/``.

    Raises:
        SystemExit: If the config has no ``visualization`` default hook.
    """
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise SystemExit('--show/--show-dir need a visualization hook in default_hooks, '
                         "e.g. visualization=dict(type='SegVisualizationHook')")
    hook['draw'] = True
    hook['interval'] = 1
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        cfg.visualizer['save_dir'] = osp.join(cfg.work_dir, args.show_dir)


def enable_tta(cfg: Config) -> None:
    """Wraps the model in ``cfg.tta_model`` and tests with ``cfg.tta_pipeline``."""
    if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
        raise SystemExit('--tta needs tta_model and tta_pipeline in the config')
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model


def save_predictions(cfg: Config, out_dir: str, format_only: bool = False) -> None:
    """Makes every test metric save its predictions into ``out_dir``.

    Metrics with an ``outfile_prefix`` argument (COCO instance and panoptic
    results for an evaluation server) write ``out_dir/<metric>.*``; metrics with
    an ``output_dir`` argument (semantic PNGs) write into ``out_dir``; mmseg's
    ``IoUMetric`` is replaced by ``AtomicIoUMetric`` (same numbers). With
    ``format_only`` the metrics only write the files and compute nothing (for
    splits without ground truth); otherwise they keep evaluating.

    Every file is written atomically (temporary file + ``os.replace``): the
    per-image PNGs as soon as each image is predicted, the JSON files at the
    end. An interrupted run leaves the complete files of the images done so
    far and no partial file under a final name.

    Raises:
        SystemExit: If a metric can save no predictions.
    """
    import inspect

    from mmengine.registry import init_default_scope
    from mmseg.evaluation import IoUMetric

    from mmseg_maskformer.evaluation import AtomicIoUMetric
    from mmseg_maskformer.registry import METRICS

    init_default_scope(cfg.get('default_scope', 'mmseg_maskformer'))
    evaluator = cfg.test_evaluator
    if isinstance(evaluator, dict) and 'metrics' in evaluator:  # dict(type='Evaluator', ...)
        evaluator = evaluator['metrics']
    metrics = evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]
    for metric in metrics:
        metric_cls = METRICS.get(metric['type'])
        if metric_cls is None:
            raise SystemExit(f"unknown metric type {metric['type']!r} in test_evaluator")
        if metric_cls is IoUMetric:  # same metric, PNGs written atomically
            metric_cls = AtomicIoUMetric
            metric['type'] = AtomicIoUMetric.__name__
        # arguments of every __init__ along the MRO (subclasses often forward **kwargs)
        params = set()
        for klass in metric_cls.__mro__:
            if '__init__' in vars(klass):
                params |= set(inspect.signature(vars(klass)['__init__']).parameters)
        name = metric_cls.__name__
        if 'outfile_prefix' in params:
            metric['outfile_prefix'] = osp.join(out_dir, name)
        elif 'output_dir' in params:
            metric['output_dir'] = out_dir
        else:
            raise SystemExit(f'--out: metric {name} cannot save its predictions')
        if format_only:
            metric['format_only'] = True


def build_cfg(args: argparse.Namespace) -> Config:
    """Loads the config and applies the command-line options."""
    cfg = load_cfg(args)
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if args.show or args.show_dir:
        trigger_visualization_hook(cfg, args)
    if args.tta:
        enable_tta(cfg)
    if args.out is not None:
        save_predictions(cfg, args.out, args.format_only)
    return cfg


def main() -> None:
    """Tests the checkpoint with the config."""
    args = parse_args()
    try:
        build_runner(build_cfg(args)).test()  # the runner is gone when it returns
    finally:
        close_distributed()


if __name__ == '__main__':
    main()
