"""Hooks of our runs.

* :class:`NumClassesCheckHook` checks the configuration before time is spent;
* :class:`RNGStateHook` saves and restores the random generators, so that a
  resumed run continues exactly as an uninterrupted one;
* :class:`DistLossLogHook` logs the losses averaged over all processes instead
  of those of rank 0 only.
"""
from typing import Any, Dict, Optional, Tuple

import torch
from mmengine import dist
from mmengine.dataset import BaseDataset
from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import is_model_wrapper

from mmseg_maskformer.registry import HOOKS
from .rng_state import RNGState, get_rng_state, set_rng_state


def dataset_classes(dataset) -> Optional[tuple]:
    """The ``classes`` of a dataset's metainfo (through dataset wrappers), or None."""
    while not isinstance(dataset, BaseDataset) and hasattr(dataset, 'dataset'):
        dataset = dataset.dataset
    meta = getattr(dataset, 'metainfo', None) or {}
    classes = meta.get('classes')
    return tuple(classes) if classes is not None else None


def check_num_classes(model, classes: tuple, dataset_name: str) -> None:
    """Raise when a module's ``num_classes`` differs from the dataset's class count.

    Args:
        model: The model (wrappers are unwrapped).
        classes: The dataset's class names.
        dataset_name: Named in the error.

    Raises:
        ValueError: Naming the module, both numbers and the config key to set.
    """
    if is_model_wrapper(model):
        model = model.module
    for name, module in model.named_modules():
        num_classes = getattr(module, 'num_classes', None)
        if isinstance(num_classes, int) and num_classes != len(classes):
            key = f'model.{name}.num_classes' if name else 'model.num_classes'
            raise ValueError(
                f'{key}={num_classes} but {dataset_name} has {len(classes)} classes '
                f'({", ".join(map(str, classes[:3]))}, ...); set num_classes={len(classes)} '
                'in the config (the dataset base configs define num_classes for this) or '
                "pass the dataset's metainfo=dict(classes=...)")


@HOOKS.register_module()
class NumClassesCheckHook(Hook):
    """Check every ``num_classes`` of the model against the dataset's classes.

    Runs before training (training set), validation and testing (their sets),
    so a wrong ``num_classes`` fails at once with a readable message instead of
    a device-side assert or a silently wrong metric later.
    """

    priority = 'VERY_HIGH'

    def _check(self, runner, loader_name: str) -> None:
        loader = getattr(runner, loader_name, None)
        dataset = getattr(loader, 'dataset', None)
        if dataset is None:
            return
        classes = dataset_classes(dataset)
        if classes is None:
            return
        check_num_classes(runner.model, classes,
                          f'the {loader_name.replace("_dataloader", "")} dataset '
                          f'{type(dataset).__name__}')

    def before_train(self, runner) -> None:
        self._check(runner, 'train_dataloader')

    def before_val(self, runner) -> None:
        self._check(runner, 'val_dataloader')

    def before_test(self, runner) -> None:
        self._check(runner, 'test_dataloader')


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Saves the random generators in checkpoints and restores them on resume.

    mmengine seeds Python, numpy and torch once per process and saves none of
    their states, so after ``--resume`` the losses' random point sampling (and
    dropout) draw other numbers than the uninterrupted run did. This hook

    * stores :func:`get_rng_state` under ``checkpoint['rng_state']`` (tensors,
      lists and numbers only: loadable with ``weights_only=True``);
    * puts torch's generators (CPU, CUDA: the model's randomness) back right
      before the first iteration after a resume, i.e. when the loaded
      checkpoint's ``meta['iter']`` equals the current iteration (a
      ``load_from`` checkpoint, which starts at iteration 0, is not affected).
      Python's and numpy's generators are left as they are: in the main
      process only data transforms draw from them (``num_workers=0``), and
      mmengine's loop replays the transforms of the trained steps on resume
      (it fast-forwards the dataloader), which brings them to the saved state;
      restoring them after the first batch was fetched would repeat that
      batch's augmentation;
    * keeps validation from advancing the training generators: the states at
      ``before_val`` are restored at ``after_val``, so a run that validates at
      step ``t`` and one resumed at ``t`` draw the same numbers afterwards, and
      a best checkpoint saved during validation holds the training states.

    Random data augmentation is made resumable by :class:`SeededInfiniteSampler`.
    In distributed runs the states of every rank are gathered right before an
    iteration-based checkpoint is written (``checkpoint['rng_state_per_rank']``)
    and each rank restores its own on resume, when the world size is the same;
    otherwise (and for best checkpoints saved during validation) every rank
    restores rank 0's states.
    """

    priority = 'LOW'

    def __init__(self) -> None:
        self._paused: Optional[RNGState] = None
        self._pending: Optional[Tuple[int, RNGState]] = None
        self._rank_states: Optional[Tuple[int, list]] = None

    @staticmethod
    def _saves_after(runner) -> bool:
        """Whether an iteration-based checkpoint hook saves after this iteration."""
        for hook in getattr(runner, 'hooks', ()):
            if isinstance(hook, CheckpointHook) and not hook.by_epoch:
                return bool(hook.every_n_train_iters(runner, hook.interval, hook.save_begin)
                            or (hook.save_last and hook.is_last_train_iter(runner)))
        return False

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: Any = None) -> None:
        """Gathers every rank's states when a checkpoint follows (runs before it)."""
        if dist.get_world_size() > 1 and self._saves_after(runner):
            self._rank_states = (runner.iter, dist.all_gather_object(get_rng_state()))

    def before_val(self, runner) -> None:
        self._paused = get_rng_state()

    def after_val(self, runner) -> None:
        if self._paused is not None:
            set_rng_state(self._paused)
            self._paused = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['rng_state'] = self._paused if self._paused is not None else get_rng_state()
        if self._paused is None and self._rank_states is not None \
                and self._rank_states[0] == runner.iter:
            checkpoint['rng_state_per_rank'] = self._rank_states[1]

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('rng_state')
        per_rank = checkpoint.get('rng_state_per_rank')
        if per_rank is not None and len(per_rank) == dist.get_world_size():
            state = per_rank[dist.get_rank()]
        step = checkpoint.get('meta', {}).get('iter')
        self._pending = (int(step), state) if state is not None and step else None

    def before_train_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        if self._pending is not None and self._pending[0] == runner.iter:
            set_rng_state(self._pending[1], generators=('torch', 'cuda'))
        self._pending = None


@HOOKS.register_module()
class DistLossLogHook(Hook):
    """Logs each loss averaged over all processes (distributed runs).

    mmengine logs the losses that rank 0 computed on its share of the batch.
    This hook replaces every scalar tensor of the training step's outputs by
    its mean over the ranks (one all-reduce per step), before mmengine records
    them: with equal per-rank batches and the criterion's normaliser averaged
    over ranks, the logged loss then equals that of one process training on
    the whole batch. Gradients are not touched (DDP averages those). In a
    single process it does nothing.
    """

    # before RuntimeInfoHook (VERY_HIGH), which copies the outputs to the logs
    priority = 'HIGHEST'

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: Optional[Dict[str, Any]] = None) -> None:
        if not outputs or dist.get_world_size() == 1:
            return
        keys = [k for k, v in outputs.items() if torch.is_tensor(v) and v.numel() == 1]
        if not keys:
            return
        values = torch.stack([outputs[k].detach().reshape(()).float() for k in keys])
        dist.all_reduce(values, op='mean')
        for key, value in zip(keys, values):
            outputs[key] = value.to(outputs[key].dtype)
