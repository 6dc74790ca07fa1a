"""Numerical guards for the training steps: non-finite losses and BYOL collapse.

Both read one scalar per step on the host (the loss, the representation spread);
the progress bar reads the loss anyway, so this adds no synchronisation that was not
already there.
"""

from __future__ import annotations

import logging
import math

import torch

from medssl.errors import NumericalError

log = logging.getLogger(__name__)


class FiniteLoss:
    """LightningModule mixin: a step whose loss is NaN/Inf is skipped (no backward, no
    parameter update); ``max_bad`` such steps in a row abort the run.

    A forward pass on a poisoned batch has already updated the batch-norm running
    statistics, so :meth:`snapshot_buffers` (called at the start of each step) keeps a
    copy of every buffer and a skipped step restores it. The last good checkpoint is
    never overwritten by a non-finite model (see
    :class:`~medssl.training.callbacks.AtomicCheckpoint`).
    """

    _bad_steps: int = 0
    skipped_steps: int = 0
    _buffer_copy: list[torch.Tensor] | None = None

    def snapshot_buffers(self) -> None:
        """Copy the module's buffers (BN statistics: a few KB to MB, no host sync)."""
        buffers = [b.detach() for b in self.buffers()]
        if self._buffer_copy is None or len(self._buffer_copy) != len(buffers):
            self._buffer_copy = [b.clone() for b in buffers]
            return
        torch._foreach_copy_(self._buffer_copy, buffers)

    def _restore_buffers(self) -> None:
        if self._buffer_copy is not None:
            torch._foreach_copy_([b.detach() for b in self.buffers()], self._buffer_copy)

    def finite_or_skip(self, loss: torch.Tensor, max_bad: int) -> torch.Tensor | None:
        """``loss`` when finite; ``None`` (Lightning skips the step) otherwise."""
        if bool(torch.isfinite(loss.detach())):
            self._bad_steps = 0
            return loss
        self._restore_buffers()
        self._bad_steps += 1
        self.skipped_steps += 1
        log.warning(
            "step %d: non-finite loss (%s); step skipped (%d in a row, abort at %d)",
            self.global_step,
            float(loss.detach()),
            self._bad_steps,
            max_bad,
        )
        if self._bad_steps >= max_bad:
            raise NumericalError(
                f"{self._bad_steps} consecutive non-finite losses up to step {self.global_step}; "
                "stopped (the last good checkpoint is kept; check the data and the learning rate)"
            )
        return None


class CollapseMonitor:
    """Flags BYOL representation collapse.

    ``std`` is :func:`~medssl.training.losses.representation_std` of the online
    projections: about ``1/√D`` when healthy, 0 when every input maps to the same
    vector. Below ``fraction/√D`` for ``patience`` consecutive steps the run is
    flagged once (a warning and :attr:`flag`, which the run writes to ``result.json``).
    """

    def __init__(self, dim: int, fraction: float = 0.1, patience: int = 10) -> None:
        self.threshold = fraction / math.sqrt(dim)
        self.patience = max(1, patience)
        self.low_steps = 0
        self.flag: dict | None = None

    def update(self, std: float, step: int) -> bool:
        """Record one step's spread; True when this step raises the flag."""
        self.low_steps = self.low_steps + 1 if std < self.threshold else 0
        if self.flag is None and self.low_steps >= self.patience:
            self.flag = {"step": step, "online_std": std, "threshold": self.threshold}
            log.warning(
                "representation collapse: online std %.2e < %.2e for %d steps (step %d)",
                std,
                self.threshold,
                self.low_steps,
                step,
            )
            return True
        return False
