"""NumClassesCheckHook: a wrong num_classes fails before training, naming the fix."""
from types import SimpleNamespace

import pytest
from torch import nn

from mmseg_maskformer.engine import NumClassesCheckHook, check_num_classes
from mmseg_maskformer.engine.hooks import dataset_classes


class Head(nn.Module):

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes


class Model(nn.Module):

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.decode_head = Head(num_classes)


class FakeDataset:
    """Stands in for a BaseDataset: only ``metainfo`` is read."""

    def __init__(self, classes):
        self.metainfo = dict(classes=classes)


def runner_with(model, classes):
    loader = SimpleNamespace(dataset=FakeDataset(classes))
    return SimpleNamespace(model=model, train_dataloader=loader, val_dataloader=loader,
                           test_dataloader=loader)


def test_matching_num_classes_pass():
    hook = NumClassesCheckHook()
    runner = runner_with(Model(3), ('a', 'b', 'c'))
    hook.before_train(runner)
    hook.before_val(runner)
    hook.before_test(runner)


@pytest.mark.parametrize('stage', ['before_train', 'before_val', 'before_test'])
def test_mismatch_names_module_numbers_and_fix(stage):
    runner = runner_with(Model(150), tuple(f'c{i}' for i in range(133)))
    with pytest.raises(ValueError) as error:
        getattr(NumClassesCheckHook(), stage)(runner)
    message = str(error.value)
    assert 'model.decode_head.num_classes=150' in message
    assert '133 classes' in message and 'num_classes=133' in message


def test_datasets_without_classes_are_not_checked():
    runner = runner_with(Model(150), None)
    NumClassesCheckHook().before_train(runner)
    check_num_classes(Model(2), ('a', 'b'), 'd')


def test_wrapped_datasets_are_unwrapped():
    """Wrappers such as RepeatDataset expose the wrapped set as ``.dataset``."""
    wrapper = SimpleNamespace(dataset=SimpleNamespace(dataset=FakeDataset(('x', 'y'))))
    assert dataset_classes(wrapper) == ('x', 'y')
