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

import copy
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

    def copy(self, resume: tuple[int, int] | None = None) -> EpochSampler:
        """The same sampler (epoch included) with ``resume`` (``(epoch, batches done)``)
        as its only pending skip."""
        twin = copy.copy(self)
        twin._resume = resume
        return twin

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


class _Epochs(Sampler[tuple[int, int, int]]):
    """The keys of ``sampler``'s epochs ``first, first + 1, …`` one after another, without
    end (the first resumed where ``sampler.resume_at`` says). Owns ``sampler``."""

    def __init__(self, sampler: EpochSampler, first: int) -> None:
        self.sampler, self.first = sampler, first

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        epoch = self.first
        while True:
            self.sampler.set_epoch(epoch)
            yield from self.sampler
            epoch += 1


class EpochStream:
    """A training loader whose workers run on across epoch boundaries.

    Lightning starts a new iterator over the training loader at every epoch, and a
    DataLoader's new iterator waits for a worker to make its first batch; with the
    batched device augmentation that is the draw of a batch's view parameters (≈24 ms for
    256 pairs), paid at every epoch start on top of the usual wait (BYOL on a GPU:
    ≈30–37 ms against ≈4.5 ms inside an epoch; on the full ACDC training split an epoch is
    five steps). Here one DataLoader iterator runs over the epochs ``e, e + 1, …`` of an
    :class:`EpochSampler`, and each epoch's iterator takes its batches from it, so the
    workers prefetch the next epoch's first batches while the current one ends.

    The batches are those of an uninterrupted :func:`resumable_loader` run, in the same
    order: the same ``(epoch, index, draw)`` keys. :attr:`sampler` is the sampler
    Lightning sets the epoch of (``set_epoch``); nothing is read from it before an epoch's
    first batch is asked for (Lightning calls ``iter()`` once at set-up, before it sets
    the epoch). An epoch that does not continue where the stream stands (a new run, a
    resumed one, an epoch left early: with ``limit_train_batches`` every epoch, which is
    correct but no faster than a per-epoch loader) restarts the stream there; an iterator of an
    earlier epoch that is resumed after a later one started is an error, never a shifted
    batch. The live DataLoader iterator is ``_iterator``, the attribute Lightning's
    teardown shuts down (also after an exception).

    Args:
        dataset: the training dataset (keyed by ``(epoch, index, draw)``).
        sampler: its :class:`EpochSampler` (a pending ``resume_at`` of it is ignored:
            pass ``resume_position``).
        batch_size: per-rank batch size.
        num_workers: DataLoader worker processes.
        resume_position: ``(epoch, batches done)`` of a resumed run: that epoch skips them.
    """

    def __init__(
        self,
        dataset,
        sampler: EpochSampler,
        batch_size: int,
        num_workers: int,
        resume_position: tuple[int, int] | None = None,
    ) -> None:
        self.dataset, self.sampler = dataset, sampler
        self.batch_size, self.num_workers = batch_size, num_workers
        self._resume = resume_position
        #: where the running stream stands: (epoch, batches taken); None: not started
        self._at: tuple[int, int] | None = None
        self._iterator: Iterator | None = None
        self._owner: object | None = None

    def __len__(self) -> int:
        return len(self.sampler) // self.batch_size

    def __iter__(self) -> Iterator:
        epoch = self.sampler.epoch
        skip = 0
        if self._resume is not None and self._resume[0] == epoch:
            skip, self._resume = self._resume[1], None
        if self._iterator is None or self._at != (epoch, skip):
            self._start(epoch, skip)
        self._owner = token = object()
        for taken in range(skip, len(self)):
            if self._owner is not token or self._iterator is None:
                raise RuntimeError(
                    "an EpochStream iterator was resumed after a later epoch started or "
                    "the stream was closed"
                )
            batch = next(self._iterator)
            self._at = (epoch, taken + 1) if taken + 1 < len(self) else (epoch + 1, 0)
            yield batch

    def _start(self, epoch: int, skip: int) -> None:
        self.close()
        loader = DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=_Epochs(self.sampler.copy((epoch, skip) if skip else None), epoch),
            drop_last=True,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
        )
        self._iterator, self._at = iter(loader), (epoch, skip)

    def close(self) -> None:
        """Stop the workers now (the next epoch starts them again)."""
        iterator, self._iterator, self._at, self._owner = self._iterator, None, None, None
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()


def epoch_stream(
    dataset,
    batch_size: int,
    seed: int,
    rank: int,
    world: int,
    num_workers: int,
    resume_position: tuple[int, int] | None = None,
) -> EpochStream:
    """:func:`resumable_loader`'s batches from an :class:`EpochStream` (for runs of many
    epochs: pretraining)."""
    sampler = EpochSampler(len(dataset), batch_size, seed=seed, rank=rank, world=world)
    return EpochStream(dataset, sampler, batch_size, num_workers, resume_position)


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
