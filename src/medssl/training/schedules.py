"""Pure schedules of training step ``step`` out of ``total`` steps."""

from __future__ import annotations

import math


def warmup_cosine(step: int, total: int, warmup: int, final_ratio: float = 0.0) -> float:
    """Learning-rate multiplier: linear warmup from 0 over ``warmup`` steps, then cosine to
    ``final_ratio`` at ``total``.

    Returns a factor in ``[final_ratio, 1]`` (``(step + 1) / warmup`` during warmup, so the
    first step already moves).
    """
    if total <= 0:
        raise ValueError("total must be positive")
    if step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def momentum_schedule(step: int, total: int, base: float = 0.99, end: float = 1.0) -> float:
    """BYOL target momentum τ rising from ``base`` to ``end`` on a cosine over training.

    τ(k) = end − (end − base)·(cos(πk/K) + 1)/2  (Grill et al. 2020, §3.2).
    """
    if total <= 0:
        raise ValueError("total must be positive")
    progress = min(1.0, max(0.0, step / total))
    return end - (end - base) * (math.cos(math.pi * progress) + 1) / 2
