"""RNG states in checkpoints, per-sample seeds and the hooks that use them."""
import pickle
import random

import numpy as np
import torch
from mmengine.dataset import InfiniteSampler

from mmseg_maskformer.engine import (DistLossLogHook, RNGStateHook, SeededIndex,
                                     SeededInfiniteSampler, get_rng_state, load_checkpoint_safe,
                                     sample_seed, seeded_rng, set_rng_state)


def draw() -> tuple:
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_state_roundtrip_through_a_weights_only_checkpoint(tmp_path):
    torch.save(dict(rng_state=get_rng_state()), tmp_path / 'ckpt.pth')
    expected = draw()
    assert draw() != expected
    set_rng_state(load_checkpoint_safe(str(tmp_path / 'ckpt.pth'))['rng_state'])
    assert draw() == expected


def test_seeded_rng_is_isolated_and_repeatable():
    state = get_rng_state()
    with seeded_rng(7):
        first = draw()
    after = draw()
    set_rng_state(state)
    with seeded_rng(7):
        assert draw() == first
    assert draw() == after  # the block did not move the outer generators


def test_sample_seeds_differ_and_index_survives_pickling():
    seeds = {sample_seed(0, p) for p in range(1000)}
    assert len(seeds) == 1000 and sample_seed(0, 5) == sample_seed(0, 5) != sample_seed(1, 5)
    index = pickle.loads(pickle.dumps(SeededIndex(3, seed=11)))
    assert index == 3 and index.seed == 11 and [10, 20, 30, 40][index] == 40


class RandomDataset:
    """A dataset whose pipeline draws random numbers, as augmentations do."""

    def __init__(self) -> None:
        self.pipeline = lambda info: (info['sample_idx'], np.random.rand(), torch.rand(()))

    def __len__(self) -> int:
        return 5

    def __getitem__(self, index):
        return self.pipeline(dict(sample_idx=index))


def samples(world_size: int, rank: int, steps: int, monkeypatch) -> list:
    monkeypatch.setattr('mmengine.dataset.sampler.get_dist_info', lambda: (rank, world_size))
    dataset = RandomDataset()
    stream = iter(SeededInfiniteSampler(dataset, shuffle=True, seed=3))
    np.random.seed(rank)  # workers and ranks hold different global states
    return [dataset[next(stream)] for _ in range(steps)]


def test_two_ranks_see_the_samples_of_one_process(monkeypatch):
    single = samples(1, 0, 12, monkeypatch)
    rank0, rank1 = samples(2, 0, 6, monkeypatch), samples(2, 1, 6, monkeypatch)
    assert [s for pair in zip(rank0, rank1) for s in pair] == single
    monkeypatch.setattr('mmengine.dataset.sampler.get_dist_info', lambda: (0, 1))
    plain = iter(InfiniteSampler(RandomDataset(), shuffle=True, seed=3))
    assert [int(s[0]) for s in single] == [next(plain) for _ in range(12)]


class FakeRunner:

    def __init__(self, iteration: int) -> None:
        self.iter = iteration


def test_hook_restores_torch_state_only_when_resuming():
    hook, checkpoint = RNGStateHook(), dict(meta=dict(iter=4))
    hook.before_save_checkpoint(FakeRunner(4), checkpoint)
    expected = torch.rand(3)
    hook.after_load_checkpoint(FakeRunner(0), checkpoint)
    hook.before_train_iter(FakeRunner(4), batch_idx=4)
    assert torch.equal(torch.rand(3), expected)
    hook.after_load_checkpoint(FakeRunner(0), checkpoint)  # load_from: starts at 0
    hook.before_train_iter(FakeRunner(0), batch_idx=0)
    assert not torch.equal(torch.rand(3), expected)


def test_validation_does_not_move_training_generators():
    hook = RNGStateHook()
    state = get_rng_state()
    expected = torch.rand(3)
    set_rng_state(state)
    hook.before_val(FakeRunner(4))
    torch.rand(100)  # e.g. the validation dataloader draws its base seed
    checkpoint = {}
    hook.before_save_checkpoint(FakeRunner(4), checkpoint)  # a best checkpoint
    hook.after_val(FakeRunner(4))
    assert torch.equal(torch.rand(3), expected)
    assert torch.equal(checkpoint['rng_state']['torch'], state['torch'])


def test_dist_loss_log_hook_is_a_no_op_in_one_process():
    outputs = dict(loss=torch.tensor(2.0))
    DistLossLogHook().after_train_iter(FakeRunner(1), 0, None, outputs)
    assert outputs['loss'].item() == 2.0


class FakeCheckpointRunner(FakeRunner):
    """Iteration ``iteration`` of ``max_iters``, with an iteration checkpoint hook."""

    def __init__(self, iteration: int, interval: int = 2, max_iters: int = 8) -> None:
        from mmengine.hooks import CheckpointHook
        super().__init__(iteration)
        self.max_iters = max_iters
        self.train_loop = type('Loop', (), dict(max_iters=max_iters))()
        self.hooks = [CheckpointHook(interval=interval, by_epoch=False)]


def test_each_rank_restores_its_own_state(monkeypatch):
    from mmengine import dist
    rank_states = []
    for rank in range(2):  # what each of two ranks holds after iteration 3 (index)
        torch.manual_seed(100 + rank)
        rank_states.append(get_rng_state())
    monkeypatch.setattr(dist, 'get_world_size', lambda *a: 2)
    monkeypatch.setattr(dist, 'all_gather_object', lambda obj, *a: list(rank_states))
    hook, checkpoint = RNGStateHook(), dict(meta=dict(iter=4))
    hook.after_train_iter(FakeCheckpointRunner(2), batch_idx=2)  # no save after it
    assert hook._rank_states is None
    hook.after_train_iter(FakeCheckpointRunner(3), batch_idx=3)  # interval 2: saves
    hook.before_save_checkpoint(FakeCheckpointRunner(3), checkpoint)
    assert len(checkpoint['rng_state_per_rank']) == 2
    for rank in range(2):
        monkeypatch.setattr(dist, 'get_rank', lambda *a: rank)
        set_rng_state(rank_states[rank])
        expected = torch.rand(3)
        torch.manual_seed(7)  # whatever the restarted process holds
        hook.after_load_checkpoint(FakeRunner(0), checkpoint)
        hook.before_train_iter(FakeRunner(4), batch_idx=4)
        assert torch.equal(torch.rand(3), expected)
    # another world size: every rank falls back to rank 0's state
    monkeypatch.setattr(dist, 'get_world_size', lambda *a: 3)
    set_rng_state(checkpoint['rng_state'])
    expected = torch.rand(3)
    hook.after_load_checkpoint(FakeRunner(0), checkpoint)
    hook.before_train_iter(FakeRunner(4), batch_idx=4)
    assert torch.equal(torch.rand(3), expected)
