"""Pure schedules of training step ``step`` out of ``total`` steps."""

from __future__ import annotations

import math


def momentum_schedule(step: int, total: int, base: float = 0.99, end: float = 1.0) -> float:
    """BYOL target momentum τ rising from ``base`` to ``end`` on a cosine over training.

    τ(k) = end − (end − base)·(cos(πk/K) + 1)/2  (Grill et al. 2020, §3.2).
    """
    if total <= 0:
        raise ValueError("total must be positive")
    progress = min(1.0, max(0.0, step / total))
    return end - (end - base) * (math.cos(math.pi * progress) + 1) / 2


def linear_warmup_cosine(
    epoch: int,
    warmup_epochs: int,
    max_epochs: int,
    start_ratio: float = 0.0,
    end_ratio: float = 0.0,
) -> float:
    """Learning-rate multiplier of pl_bolts' ``LinearWarmupCosineAnnealingLR`` (closed form).

    The schedule both stages of the study use (solo-learn's ``warmup_cosine`` steps it
    per optimisation step, the fine-tuning per epoch). ``epoch`` is the scheduler's
    counter; the rate starts at ``start_ratio`` (``warmup_start_lr / lr``), rises linearly
    to 1 at ``warmup_epochs − 1``, then follows a cosine from 1 at ``warmup_epochs`` to
    ``end_ratio`` (``eta_min / lr``) at ``max_epochs``::

        e < W:  s + e·(1 − s)/max(1, W − 1)
        e ≥ W:  η + (1 − η)·(1 + cos(π·(e − W)/(E − W)))/2

    Counters past ``max_epochs`` are held at ``max_epochs`` (pl_bolts would restart the
    cosine: training never gets there).
    """
    if max_epochs <= 0:
        raise ValueError("max_epochs must be positive")
    epoch = min(max(epoch, 0), max_epochs)
    if epoch < warmup_epochs:
        return start_ratio + epoch * (1 - start_ratio) / max(1, warmup_epochs - 1)
    span = max(1, max_epochs - warmup_epochs)
    return end_ratio + (1 - end_ratio) * 0.5 * (
        1 + math.cos(math.pi * (epoch - warmup_epochs) / span)
    )
