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
    window = _tail_window(steps, values, tail)
    if window is None:
        return None
    return bool(window[1].max() - window[1].min() < tolerance)


def tail_rise(steps: np.ndarray, values: np.ndarray, tail: float = SETTLED_TAIL) -> float | None:
    """How much a learning curve still rises over its last ``tail`` of training.

    medssl's companion to :func:`curve_settled` (not part of issue 15's rule): the slope
    of a least-squares line through the same window (the curve interpolated at the
    window's start, then every validation inside it), times the window's length in
    steps. A curve that is still improving gives a clear positive rise; a plateau with
    noisy validations gives a rise near zero even when its range fails the rule, and an
    over-fitting curve a negative one.

    Returns:
        The fitted change in the metric's units, or ``None`` for fewer than two points.
    """
    window = _tail_window(steps, values, tail)
    if window is None or window[0][-1] <= window[0][0]:
        return None
    s, v = window
    slope = np.polyfit(s, v, 1)[0]
    return float(slope * (s[-1] - s[0]))


def _tail_window(
    steps: np.ndarray, values: np.ndarray, tail: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """(steps, values) from ``(1 - tail)`` × the last step on, the curve linearly
    interpolated at the window's start; ``None`` for a curve of fewer than two points."""
    steps, values = np.asarray(steps, float), np.asarray(values, float)
    if steps.size < 2:
        return None
    order = np.argsort(steps)
    steps, values = steps[order], values[order]
    start = (1.0 - tail) * steps[-1]
    inside = steps >= start  # never empty: the last validation is inside
    if steps[0] < start and steps[inside][0] > start:  # no validation at the start
        return (
            np.r_[start, steps[inside]],
            np.r_[np.interp(start, steps, values), values[inside]],
        )
    return steps[inside], values[inside]
