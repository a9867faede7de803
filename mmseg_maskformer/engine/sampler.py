"""An infinite sampler whose samples carry their own augmentation seed.

mmengine's ``InfiniteSampler`` fixes *which* images each step trains on, but
the random augmentation of an image (crop position, flip, colour jitter) comes
from the global generators of whichever process runs the pipeline: the main
process or a dataloader worker seeded by ``seed + rank * num_workers +
worker_id``. So the augmented batch of step ``t`` depends on the number of
workers, the number of processes and on whether the run was resumed.

:class:`SeededInfiniteSampler` yields the same index stream as
``InfiniteSampler`` (same permutations, same split over ranks), but every index
is a :class:`SeededIndex` carrying ``sample_seed(seed, position)``, where
``position`` is the place of the sample in the stream shared by all ranks.
The sampler wraps the dataset's pipeline in a :class:`SeededPipeline`, which
runs each sample's transforms under its seed (:func:`seeded_rng`). Hence:

* a run resumed at step ``t`` augments steps ``t + 1, ...`` exactly as the
  uninterrupted run did;
* ``N`` processes with batch ``B`` see the same augmented samples per step as
  one process with batch ``N * B``;
* the number of dataloader workers does not matter.

Use it in the training dataloader of a config::

    train_dataloader = dict(sampler=dict(type='SeededInfiniteSampler', shuffle=True))

Limits: dataset wrappers (``ConcatDataset``, ``RepeatDataset``) map indices to
plain ints, so their samples are not seeded (a warning says so); a sample that
the pipeline drops (``None``) is replaced by a random unseeded one, as in
mmengine.
"""
import itertools
import logging
from typing import Any, Callable, Iterator, Optional

from mmengine.dataset import InfiniteSampler
from mmengine.logging import print_log

from mmseg_maskformer.registry import DATA_SAMPLERS
from .rng_state import sample_seed, seeded_rng

__all__ = ['SeededIndex', 'SeededPipeline', 'SeededInfiniteSampler']


class SeededIndex(int):
    """A dataset index that carries the augmentation seed of its sample.

    Behaves as the plain int everywhere (list indexing, comparisons, numpy),
    and survives pickling to dataloader workers.

    Args:
        value: The dataset index.
        seed: The sample's seed in ``[0, 2**32)``.
    """

    seed: int

    def __new__(cls, value: int, seed: int) -> 'SeededIndex':
        obj = super().__new__(cls, value)
        obj.seed = int(seed)
        return obj

    def __reduce__(self) -> tuple:
        return SeededIndex, (int(self), self.seed)

    def __repr__(self) -> str:
        return f'SeededIndex({int(self)}, seed={self.seed})'


class SeededPipeline:
    """Runs a dataset pipeline under the seed of the sample's index.

    mmengine's ``BaseDataset.get_data_info`` stores the index passed to
    ``dataset[index]`` as ``data_info['sample_idx']``; when that is a
    :class:`SeededIndex` the transforms run inside :func:`seeded_rng`, and
    ``sample_idx`` becomes a plain int again. Other indices run unchanged.

    Args:
        pipeline: The dataset's pipeline (a callable on the data-info dict).
    """

    def __init__(self, pipeline: Callable[[dict], Any]) -> None:
        self.pipeline = pipeline

    def __call__(self, data_info: dict) -> Any:
        index = data_info.get('sample_idx')
        if not isinstance(index, SeededIndex):
            return self.pipeline(data_info)
        data_info['sample_idx'] = int(index)
        with seeded_rng(index.seed):
            return self.pipeline(data_info)

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.pipeline!r})'


def install_seeded_pipeline(dataset: Any) -> bool:
    """Wraps ``dataset.pipeline`` in a :class:`SeededPipeline` (once).

    Args:
        dataset: The dataset the sampler draws from.

    Returns:
        True if the dataset's pipeline is now seeded per sample, False for
        datasets without a ``pipeline`` (dataset wrappers).
    """
    pipeline = getattr(dataset, 'pipeline', None)
    if pipeline is None:
        return False
    if not isinstance(pipeline, SeededPipeline):
        dataset.pipeline = SeededPipeline(pipeline)
    return True


@DATA_SAMPLERS.register_module()
class SeededInfiniteSampler(InfiniteSampler):
    """``InfiniteSampler`` whose indices carry per-sample augmentation seeds.

    Args:
        dataset: The dataset (its pipeline is wrapped, see module docstring).
        shuffle: Shuffle each pass over the dataset.
        seed: Seed of the permutations and of the sample seeds; ``None`` takes
            a seed shared by all ranks (the Runner passes its own seed).
    """

    def __init__(self, dataset: Any, shuffle: bool = True, seed: Optional[int] = None) -> None:
        super().__init__(dataset, shuffle=shuffle, seed=seed)
        if not install_seeded_pipeline(dataset):
            print_log(f'SeededInfiniteSampler: {type(dataset).__name__} has no pipeline of its '
                      'own (a dataset wrapper?); its samples are augmented with the global '
                      'random generators, not per-sample seeds', logger='current',
                      level=logging.WARNING)

    def _indices_of_rank(self) -> Iterator[int]:
        """This rank's share of the stream: every ``world_size``-th sample, seeded."""
        stream = itertools.islice(enumerate(self._infinite_indices()), self.rank, None,
                                  self.world_size)
        for position, index in stream:
            yield SeededIndex(index, sample_seed(self.seed, position))
