"""A deterministic, shardable, resumable epoch sampler.

Each epoch's order is a permutation drawn from ``(seed, epoch)`` alone, split across
``world`` ranks after truncation to whole global batches; items are yielded as
``(epoch, index, draw)`` so that datasets key their augmentation on them (see
:func:`medssl.data.transforms.sample_generator`). A run resumed in the middle of an
epoch skips the batches already consumed, so it replays exactly the same data as an
uninterrupted run.

With ``num_samples`` larger than the dataset (small label budgets trained for the
same number of steps as the full set), indices are drawn as concatenated
permutations: every slice is seen equally often (oversampling, not fewer steps).
``draw`` counts those permutations (0 for the first), so each time a slice comes back
within an epoch it gets a fresh augmentation; fine-tuning is one long epoch, and
keying on ``(epoch, index)`` alone would show a one-slice budget a single crop for the
whole run.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Sampler


class EpochSampler(Sampler[tuple[int, int, int]]):
    """Deterministic sampler yielding ``(epoch, dataset_index, draw)``.

    Args:
        size: dataset length.
        batch_size: per-rank batch size.
        seed: base seed.
        num_samples: samples per epoch over all ranks (default ``size``).
        rank: this process's rank.
        world: number of processes.
        shuffle: permute (training) or keep order.
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        seed: int = 0,
        num_samples: int | None = None,
        rank: int = 0,
        world: int = 1,
        shuffle: bool = True,
    ) -> None:
        if size <= 0:
            raise ValueError("cannot sample from an empty dataset")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world, self.shuffle = rank, world, shuffle
        total = num_samples if num_samples is not None else size
        global_batch = batch_size * world
        self.per_rank = max(1, total // global_batch) * batch_size
        self.epoch = 0
        self._resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, epoch: int, batches_done: int) -> None:
        """Skip the first ``batches_done`` batches the next time ``epoch`` is iterated."""
        self._resume = (epoch, batches_done)

    def __len__(self) -> int:
        return self.per_rank

    def order(self, epoch: int) -> torch.Tensor:
        """The global index order of ``epoch`` (all ranks)."""
        need = self.per_rank * self.world
        if not self.shuffle:
            return torch.arange(need) % self.size
        gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        reps = -(-need // self.size)
        return torch.cat([torch.randperm(self.size, generator=gen) for _ in range(reps)])[:need]

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        order = self.order(self.epoch)
        # which concatenated permutation each global position belongs to
        draws = torch.arange(len(order)) // self.size
        mine = order[self.rank :: self.world].tolist()
        mine_draws = draws[self.rank :: self.world].tolist()
        skip = 0
        if self._resume is not None and self._resume[0] == self.epoch:
            skip = self._resume[1] * self.batch_size
            self._resume = None
        rest = zip(mine[skip:], mine_draws[skip:], strict=True)
        return iter([(self.epoch, i, d) for i, d in rest])


def resumable_loader(
    dataset,
    batch_size: int,
    seed: int,
    rank: int,
    world: int,
    num_workers: int,
    resume_position: tuple[int, int] | None = None,
    num_samples: int | None = None,
) -> DataLoader:
    """A training DataLoader over an :class:`EpochSampler`, skipping what a resumed run
    already consumed (``resume_position`` = ``(epoch, batches done)``)."""
    sampler = EpochSampler(
        len(dataset), batch_size, seed=seed, num_samples=num_samples, rank=rank, world=world
    )
    if resume_position is not None:
        sampler.resume_at(*resume_position)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=True,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
    )


class ResumePosition:
    """Where in the data a resumed run continues: ``(epoch, batches processed)``.

    An owned helper of a LightningModule: before a checkpoint is written the module
    calls :meth:`capture` with its trainer (the position as Lightning's loop counts
    it), :meth:`state_dict` goes into the checkpoint, and on resume
    :meth:`load_state_dict` sets :attr:`position`, which the module hands to
    :func:`resumable_loader`; so a run resumed from a mid-epoch checkpoint replays
    exactly the batches it had not done.
    """

    def __init__(self) -> None:
        #: the position restored from a checkpoint (``None``: start at the beginning)
        self.position: tuple[int, int] | None = None
        self._captured: list[int] | None = None

    def capture(self, trainer) -> None:
        """Record the trainer's current position (call before saving a checkpoint)."""
        progress = trainer.fit_loop.epoch_loop.batch_progress.current
        self._captured = [int(trainer.current_epoch), int(progress.processed)]

    def state_dict(self) -> list[int] | None:
        return self._captured

    def load_state_dict(self, state: list[int] | None) -> None:
        self.position = None if state is None else (int(state[0]), int(state[1]))
