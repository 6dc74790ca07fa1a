"""Learning-curve summaries as pure functions."""

from __future__ import annotations

import numpy as np


def curve_auc(steps: np.ndarray, values: np.ndarray) -> float:
    """Area under a learning curve divided by its step span (trapezoid rule).

    The result is the curve's mean value over training, in the metric's own units
    (e.g. mean IoU in [0, 1]): a pipeline that learns faster has a larger AUC even
    when both end at the same value. A single point returns that point's value.
    """
    steps, values = np.asarray(steps, float), np.asarray(values, float)
    if steps.size == 0:
        return float("nan")
    if steps.size == 1:
        return float(values[0])
    order = np.argsort(steps)
    steps, values = steps[order], values[order]
    span = steps[-1] - steps[0]
    area = float(np.sum((steps[1:] - steps[:-1]) * (values[1:] + values[:-1]) / 2))
    return area / span if span > 0 else float(values.mean())


def steps_to_fraction(
    steps: np.ndarray, values: np.ndarray, fraction: float = 0.95, final: float | None = None
) -> float:
    """First step at which the curve reaches ``fraction`` of its final value.

    Args:
        steps, values: the curve.
        fraction: e.g. 0.95 for "steps to 95% of final".
        final: reference value (default: the curve's last value).

    Returns:
        The step, or NaN for an empty curve.
    """
    steps, values = np.asarray(steps, float), np.asarray(values, float)
    if steps.size == 0:
        return float("nan")
    order = np.argsort(steps)
    steps, values = steps[order], values[order]
    ref = values[-1] if final is None else final
    hit = np.flatnonzero(values >= fraction * ref)
    return float(steps[hit[0]]) if hit.size else float("nan")


#: Issue 15's convergence rule: the last 20 % of a run's validation curve moved by less
#: than 0.01 IoU.
SETTLED_TAIL = 0.2
SETTLED_TOLERANCE = 0.01


def curve_settled(
    steps: np.ndarray,
    values: np.ndarray,
    tail: float = SETTLED_TAIL,
    tolerance: float = SETTLED_TOLERANCE,
) -> bool | None:
    """Whether a learning curve has converged: over the last ``tail`` of training (steps
    from ``(1 - tail)`` × the last step on), the curve — linearly interpolated at the
    window's start, then every validation inside it — has a range (max − min) below
    ``tolerance``.

    Returns:
        ``None`` for a curve of fewer than two validations (it cannot tell).
    """
    steps, values = np.asarray(steps, float), np.asarray(values, float)
    if steps.size < 2:
        return None
    order = np.argsort(steps)
    steps, values = steps[order], values[order]
    start = (1.0 - tail) * steps[-1]
    inside = values[steps >= start]  # never empty: the last validation is inside
    window = np.r_[np.interp(start, steps, values), inside] if steps[0] < start else inside
    return bool(window.max() - window.min() < tolerance)
