"""Validation during fine-tuning, sharded across the processes of a DDP run.

Each rank validates its own share of the validation volumes (:class:`VolumeShard`:
volumes ``rank, rank + world, ...``), and :class:`ValidationScores` follows the
accumulate → sync → aggregate → reset shape of MONAI's cumulative metrics: per-class
counts (:class:`~medssl.evaluation.counts.SegmentationCounts`) and the loss sum are
accumulated per volume, summed across ranks at the end of the validation, turned into
scores (identical on every rank), and reset. So a DDP run scores every volume once and
its learning curve is the one a single process computes for the same weights (to
float rounding of the sums); rank 0 writes it.

Why shards are padded: under DDP the first forward pass after a training step
broadcasts the batch-norm buffers from rank 0, a collective that every rank must
join; a rank with fewer volumes than another therefore gets repeats of its own volumes
marked ``scored = False``, which run forward and are not counted. Every rank then runs
the same number of validation batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
from torch.utils.data import Dataset

from medssl.evaluation.counts import SegmentationCounts


class VolumeShard(Dataset):
    """Rank ``rank``'s share of ``volumes`` (items ``rank, rank + world, ...``), padded to
    ``ceil(len(volumes) / world)`` items with unscored repeats; every item gets
    ``scored`` (bool)."""

    def __init__(self, volumes: Dataset, rank: int = 0, world: int = 1) -> None:
        self.volumes, self.rank, self.world = volumes, rank, max(1, world)
        self.total = len(volumes)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return -(-self.total // self.world) if self.total else 0

    def indices(self) -> list[int]:
        """The volumes this rank scores."""
        return list(range(self.rank, self.total, self.world))

    def __getitem__(self, i: int) -> dict:
        j = self.rank + i * self.world
        scored = j < self.total
        item = dict(self.volumes[j if scored else j % self.total])
        item["scored"] = scored
        return item


class ValidationScores:
    """Validation loss and per-class counts over volumes: accumulate → sync → aggregate
    → reset.

    Args:
        classes: foreground labels to score.
        names: ``{value: name}`` of the dataset's label set (the score keys).
    """

    def __init__(self, classes: Sequence[int], names: Mapping[int, str] | None = None) -> None:
        self.counts = SegmentationCounts(classes, names)
        self.reset()

    def reset(self) -> None:
        self.counts.reset()
        self._loss: torch.Tensor | None = None
        #: volumes accumulated (after :meth:`sync`: over all ranks)
        self.volumes = 0

    @torch.no_grad()
    def update(self, pred: torch.Tensor, label: torch.Tensor, loss: torch.Tensor) -> None:
        """Add one volume: its ``(S, H, W)`` predicted labels, labels and loss."""
        self.counts.update(pred, label)
        loss = loss.detach().double()
        self._loss = loss if self._loss is None else self._loss + loss
        self.volumes += 1

    def sync(
        self,
        device: torch.device | str,
        reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        """Sum the counts, loss and volume count over all ranks (see
        :meth:`SegmentationCounts.sync`); every rank must call it."""
        self.counts.sync(device, reduce)
        loss = torch.zeros(2, dtype=torch.float64, device=device)
        if self._loss is not None:
            loss[0] = self._loss.to(device)
        loss[1] = self.volumes
        if reduce is not None:
            loss = reduce(loss)
        elif torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(loss, op=torch.distributed.ReduceOp.SUM)
        self._loss, self.volumes = loss[0], round(float(loss[1]))

    def compute(self) -> dict[str, float]:
        """``{"val_loss": mean loss per volume, **scores}`` (see
        :meth:`SegmentationCounts.compute`)."""
        val_loss = float(self._loss) / self.volumes if self.volumes else math.nan
        return {"val_loss": val_loss, **self.counts.compute()}
