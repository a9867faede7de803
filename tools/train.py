"""Train a segmentor from a config.

Usage:
    python tools/train.py CONFIG [--work-dir DIR] [--resume [CHECKPOINT]] [--amp]
        [--amp-dtype {float16,bfloat16}] [--seed SEED] [--deterministic]
        [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch,slurm,mpi}]

Logs and checkpoints go to ``--work-dir``, else to ``work_dir`` of the
config, else to ``./work_dirs/<config name>``. ``--resume`` alone resumes from
the latest checkpoint in the work dir; ``--resume CHECKPOINT`` resumes from
that file. For several GPUs or nodes use ``tools/dist_train.sh`` or
``tools/slurm_train.sh``. ``--seed`` and ``--deterministic`` set the config's
``randomness``: with both, a run repeats bit for bit on the same machine and a
resumed run ends as the uninterrupted one (``docs/reliability.md``).
"""
import argparse
import datetime
import gc
import logging
import os
import os.path as osp
import subprocess
from typing import TYPE_CHECKING, Optional

from mmengine.config import Config, DictAction

if TYPE_CHECKING:
    from mmengine.runner import Runner

# torch, the Runner and mmseg_maskformer are imported once the arguments are
# parsed, so that --help and argument errors answer quickly.

DEFAULT_SCOPE = 'mmseg_maskformer'


def parse_args() -> argparse.Namespace:
    """Parses the command line."""
    parser = argparse.ArgumentParser(
        description='Train a segmentor.',
        epilog='Example: python tools/train.py configs/mask2former/CONFIG.py '
        '--work-dir work_dirs/exp --resume')
    parser.add_argument('config', help='path of the training config file')
    parser.add_argument('--work-dir', help='directory for logs and checkpoints')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        default=None,
        metavar='CHECKPOINT',
        help='resume training: alone, from the latest checkpoint in the work dir; '
        'with a path, from that checkpoint')
    parser.add_argument(
        '--amp', action='store_true', help='enable automatic mixed-precision training')
    parser.add_argument(
        '--amp-dtype',
        choices=['float16', 'bfloat16'],
        default=None,
        help='autocast dtype of --amp (default: float16 on CUDA, bfloat16 on CPU)')
    parser.add_argument('--seed', type=int, default=None, help='random seed (randomness.seed)')
    parser.add_argument(
        '--deterministic',
        action='store_true',
        help='use deterministic algorithms only (randomness.deterministic=True)')
    add_common_args(parser, 'training')
    args = parse_common_args(parser)
    return args


def add_common_args(parser: argparse.ArgumentParser, job: str) -> None:
    """Adds the options train.py and test.py share (config overrides, launcher)."""
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, as key=value pairs merged into it; '
        'lists as key="[a,b]" or key=a,b, nested lists/tuples as key="[(a,b),(c,d)]" '
        '(quotation marks needed, no white space)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help=f'job launcher for distributed {job}')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or --local_rank.
    parser.add_argument(
        '--local_rank', '--local-rank', type=int, default=0, help=argparse.SUPPRESS)


def parse_common_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parses the command line, checks the config exists and sets LOCAL_RANK."""
    args = parser.parse_args()
    if not osp.isfile(args.config):
        parser.error(f'config file {args.config} does not exist')
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def load_cfg(args: argparse.Namespace) -> Config:
    """Loads the config with the overrides, the launcher and the work dir.

    work_dir priority: command line > config > ``./work_dirs/<config name>``.
    """
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.setdefault('default_scope', DEFAULT_SCOPE)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg


def enable_amp(cfg: Config, dtype: Optional[str] = None) -> None:
    """Switches the optimizer wrapper of ``cfg`` to mixed precision.

    On CUDA this is mmengine's ``AmpOptimWrapper``; without a GPU, where that
    wrapper refuses to be built, it is our ``AutocastOptimWrapper`` (autocast
    on CPU).

    Args:
        cfg: The config, changed in place.
        dtype: Autocast dtype; ``None`` picks float16 on CUDA, bfloat16 on CPU.

    Raises:
        SystemExit: If the config uses another wrapper than ``OptimWrapper``.
    """
    import torch
    from mmengine.logging import print_log

    optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if optim_wrapper in ('AmpOptimWrapper', 'AutocastOptimWrapper'):
        print_log('AMP training is already enabled in the config.', 'current', logging.WARNING)
        return
    if optim_wrapper != 'OptimWrapper':
        raise SystemExit(f'--amp needs optim_wrapper.type OptimWrapper, got {optim_wrapper}')
    on_cuda = torch.cuda.is_available()
    dtype = dtype or ('float16' if on_cuda else 'bfloat16')
    cfg.optim_wrapper.type = 'AmpOptimWrapper' if on_cuda else 'AutocastOptimWrapper'
    cfg.optim_wrapper.dtype = dtype
    # bfloat16 has the range of float32 and needs no loss scaling.
    cfg.optim_wrapper.loss_scale = 'dynamic' if dtype == 'float16' else 1.0


def build_cfg(args: argparse.Namespace) -> Config:
    """Loads the config and applies the command-line options."""
    cfg = load_cfg(args)
    if args.amp:
        enable_amp(cfg, args.amp_dtype)
    set_randomness(cfg, args.seed, args.deterministic)
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if '://' not in args.resume and not osp.isfile(args.resume):
            raise SystemExit(f'checkpoint {args.resume} to resume from does not exist')
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def set_randomness(cfg: Config, seed: Optional[int], deterministic: bool) -> None:
    """Applies ``--seed`` and ``--deterministic`` to ``cfg.randomness``.

    Deterministic cuBLAS kernels need ``CUBLAS_WORKSPACE_CONFIG`` set before
    CUDA starts; it is set here when the config asks for determinism.

    Args:
        cfg: The config, changed in place.
        seed: Seed from the command line, or None to keep the config's.
        deterministic: True to force deterministic algorithms.
    """
    if seed is None and not deterministic and not cfg.get('randomness'):
        return
    randomness = dict(cfg.get('randomness') or {})
    randomness.setdefault('seed', None)
    if seed is not None:
        randomness['seed'] = seed
    if deterministic:
        randomness['deterministic'] = True
    cfg.randomness = randomness
    if randomness.get('deterministic'):
        os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')


def init_cpu_distributed(cfg: Config) -> None:
    """Starts the process group of a distributed run on CPU-only machines.

    mmengine's launchers select a CUDA device before they start the process
    group, which fails without GPUs. For ``--launcher pytorch`` or ``slurm``
    on such machines the group is started here instead (gloo: nccl needs
    GPUs), so the Runner finds it started, and DDP is told not to pin the
    model to a device. With GPUs, nothing happens.

    Args:
        cfg: The config (``launcher``, ``env_cfg.dist_cfg``); its
            ``model_wrapper_cfg`` is changed in place.
    """
    import torch
    import torch.distributed as torch_dist

    if (cfg.launcher not in ('pytorch', 'slurm') or torch.cuda.is_available()
            or torch_dist.is_initialized()):
        return
    if cfg.launcher == 'slurm':
        os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
        os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
        os.environ.setdefault('LOCAL_RANK', os.environ['SLURM_LOCALID'])
        os.environ.setdefault('MASTER_PORT', '29500')
        if 'MASTER_ADDR' not in os.environ:
            nodes = subprocess.check_output(
                ['scontrol', 'show', 'hostname', os.environ['SLURM_NODELIST']], text=True)
            os.environ['MASTER_ADDR'] = nodes.split()[0]
    dist_cfg = dict(cfg.get('env_cfg', {}).get('dist_cfg', {}))
    dist_cfg.pop('init_backend', None)
    backend = dist_cfg.pop('backend', 'gloo')
    if backend == 'nccl':
        backend = 'gloo'
    if dist_cfg.get('timeout') is not None:
        dist_cfg['timeout'] = datetime.timedelta(seconds=dist_cfg['timeout'])
    torch_dist.init_process_group(backend=backend, **dist_cfg)
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel')
    if wrapper.get('type') in ('MMDistributedDataParallel', 'DistributedDataParallel'):
        wrapper.setdefault('device_ids', None)
    cfg.model_wrapper_cfg = wrapper


def build_runner(cfg: Config) -> 'Runner':
    """Builds the default Runner, or ``cfg.runner_type`` from the registry.

    Importing ``mmseg_maskformer`` registers our modules and allow-lists the
    globals of our checkpoints for ``torch.load(..., weights_only=True)``.
    """
    from mmengine.runner import Runner

    import mmseg_maskformer  # noqa: F401  (registers modules and the safe loaders)
    from mmseg_maskformer.registry import RUNNERS
    init_cpu_distributed(cfg)
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)


def close_distributed() -> None:
    """Destroys the process group of a distributed run and joins its threads.

    Call it once the runner is gone. ``destroy_process_group`` alone leaves
    the backend alive while anything holds the group, and gloo's worker
    threads with it. A worker that releases the tensors of the last
    collective during the interpreter's teardown aborts the finished run
    ("terminate called without an active exception"). So the group is held
    here while garbage collection frees what else holds it (DDP in the
    model), then freed last: from Python it is freed without the GIL, its
    workers finish their releases and are joined. (Modules imported after
    the group started can hold it too: ``torch.distributed.nn``, imported by
    DDP, binds it as a default argument. ``build_runner`` imports it, through
    ``mmseg_maskformer``, before any group starts.)
    """
    import torch.distributed as torch_dist

    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return
    group = torch_dist.group.WORLD
    torch_dist.destroy_process_group()
    gc.collect()
    del group


def main() -> None:
    """Trains the model of the config."""
    args = parse_args()
    try:
        build_runner(build_cfg(args)).train()  # the runner is gone when it returns
    finally:
        close_distributed()


if __name__ == '__main__':
    main()
