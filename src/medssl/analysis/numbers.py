"""Numbers (and run names) as report text: one formatting rule for every table, sentence
and figure legend."""

from __future__ import annotations

import numpy as np


def number(v: object, digits: int = 3) -> str:
    """Floats to ``digits`` significant digits (NaN as —, ±∞ as ∞/−∞); others as ``str``."""
    if isinstance(v, float | np.floating):
        if np.isnan(v):
            return "—"
        if np.isinf(v):
            return "∞" if v > 0 else "−∞"
        return f"{v:.{digits}g}"
    return str(v)


def slices(v: float) -> str:
    """A budget in slices: whole numbers from 10 up to 10⁵, two significant digits below
    and above (a degenerate fit's n* can be astronomically large)."""
    return f"{v:.0f}" if np.isfinite(v) and 10 <= abs(v) < 1e5 else number(float(v), 2)


def run_name(run_id: object, superseded: bool) -> str:
    """A run's id as tables and legends show it: marked when a re-run superseded it."""
    return f"{run_id} (superseded)" if superseded else str(run_id)


def with_ci(v: float, lo: float, hi: float, digits: int = 3) -> str:
    """``"v [lo, hi]"``; ``digits=0`` formats budgets (see :func:`slices`)."""
    fmt = slices if digits == 0 else (lambda x: number(x, digits))
    if not np.isfinite(v) or (np.isnan(lo) and np.isnan(hi)):  # no interval to show
        return fmt(v)
    return f"{fmt(v)} [{fmt(lo)}, {fmt(hi)}]"
