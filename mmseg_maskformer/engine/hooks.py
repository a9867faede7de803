"""Hooks that check a run's configuration before it spends time."""
from typing import Optional

from mmengine.dataset import BaseDataset
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmseg_maskformer.registry import HOOKS


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
