"""Numerical guards of the training steps (non-finite losses, BYOL collapse) and the
best-score tracker: plain objects a LightningModule owns, each with its own state
(``state_dict``/``load_state_dict``) saved under one key of the checkpoint (see
:mod:`medssl.training.state`).

The guards read one scalar per step on the host (the loss, the representation spread);
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
    """A step whose loss is NaN/Inf is skipped (no backward, no parameter update);
    ``max_bad`` such steps in a row abort the run.

    An owned helper of a LightningModule (``self.finite_loss = FiniteLoss(max_bad)``):
    the module calls :meth:`snapshot` at the start of each training step and returns
    :meth:`check`'s answer as its loss. A forward pass on a poisoned batch has already
    updated the batch-norm running statistics, so :meth:`snapshot` keeps a copy of every
    buffer of the module and a skipped step restores it. The last good checkpoint is
    never overwritten by a non-finite model (see
    :class:`~medssl.training.callbacks.AtomicCheckpoint`).

    Checkpoint state (:meth:`state_dict`): ``skipped_steps`` and the current run of
    ``bad_steps``.
    """

    def __init__(self, max_bad: int) -> None:
        self.max_bad = max_bad
        self.bad_steps = 0
        self.skipped_steps = 0
        self._buffer_copy: list[torch.Tensor] | None = None

    def snapshot(self, module: torch.nn.Module) -> None:
        """Copy ``module``'s buffers (BN statistics: a few KB to MB, no host sync)."""
        buffers = [b.detach() for b in module.buffers()]
        if self._buffer_copy is None or len(self._buffer_copy) != len(buffers):
            self._buffer_copy = [b.clone() for b in buffers]
            return
        torch._foreach_copy_(self._buffer_copy, buffers)

    def _restore(self, module: torch.nn.Module) -> None:
        if self._buffer_copy is not None:
            torch._foreach_copy_([b.detach() for b in module.buffers()], self._buffer_copy)

    def check(self, loss: torch.Tensor, module: torch.nn.Module, step: int) -> torch.Tensor | None:
        """``loss`` when finite; ``None`` (Lightning skips the step) otherwise, with
        ``module``'s buffers restored from the last :meth:`snapshot`.

        Raises:
            NumericalError: the ``max_bad``-th non-finite loss in a row.
        """
        if bool(torch.isfinite(loss.detach())):
            self.bad_steps = 0
            return loss
        self._restore(module)
        self.bad_steps += 1
        self.skipped_steps += 1
        log.warning(
            "step %d: non-finite loss (%s); step skipped (%d in a row, abort at %d)",
            step,
            float(loss.detach()),
            self.bad_steps,
            self.max_bad,
        )
        if self.bad_steps >= self.max_bad:
            raise NumericalError(
                f"{self.bad_steps} consecutive non-finite losses up to step {step}; "
                "stopped (the last good checkpoint is kept; check the data and the learning rate)"
            )
        return None

    def state_dict(self) -> dict:
        return {"skipped_steps": int(self.skipped_steps), "bad_steps": int(self.bad_steps)}

    def load_state_dict(self, state: dict) -> None:
        self.skipped_steps = int(state.get("skipped_steps", 0))
        self.bad_steps = int(state.get("bad_steps", 0))


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

    def state_dict(self) -> dict:
        return {"low_steps": int(self.low_steps), "flag": self.flag}

    def load_state_dict(self, state: dict) -> None:
        self.low_steps = int(state.get("low_steps", 0))
        self.flag = state.get("flag")


class BestScore:
    """The best validation score so far (higher is better), for choosing the best model.

    Checkpoint state: ``{"value": best}`` (``-inf`` before the first candidate).
    """

    def __init__(self) -> None:
        self.value = -math.inf

    def offer(self, score: float) -> bool:
        """True (and ``score`` becomes the best) when ``score`` beats the best so far."""
        if score > self.value:
            self.value = float(score)
            return True
        return False

    def state_dict(self) -> dict:
        return {"value": float(self.value)}

    def load_state_dict(self, state: dict) -> None:
        self.value = float(state.get("value", -math.inf))
