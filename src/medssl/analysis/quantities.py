"""What a study figure or table plots: the test quantities of figure 6 (an error per
results column), the study metric and its fallback for older results, their labels, and
power-law fits of any of them."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from medssl.analysis.powerlaw import ERRORS, PowerLawBootstrap, fit_pipelines

log = logging.getLogger(__name__)

#: Fig. 6 quantities: results column → (error name, whether the error is 1 − column).
QUANTITIES: dict[str, tuple[str, bool]] = {
    "paper_iou": ("1 − IoU (study metric)", True),
    "paper_jaccard_loss": ("Jaccard loss (study metric)", False),
    **{column: (name, one_minus) for name, (column, one_minus) in ERRORS.items()},
}
#: The study's quantity (per-slice IoU as the paper computes it): figures 6 and 8 default.
STUDY_METRIC = "paper_iou"
#: Older results have no study metrics: the metric each falls back to.
FALLBACK = {"paper_iou": "test_slice_iou_mean", "paper_jaccard_loss": "test_jaccard_loss"}
METRIC_LABELS = {
    "paper_iou": "test IoU (study metric)",
    "paper_jaccard_loss": "test Jaccard loss (study metric)",
    "test_slice_iou_mean": "test mean IoU",
    "test_jaccard_loss": "test Jaccard loss",
    "test_dice_3d_mean": "test mean 3D Dice",
}


def has(df: pd.DataFrame, column: str) -> bool:
    return column in df and df[column].notna().any()


def study_metric(df: pd.DataFrame, metric: str = STUDY_METRIC, what: str = "figure") -> str | None:
    """``metric`` if ``df`` has values of it, else its fallback (logged as a warning), else
    ``None``."""
    if has(df, metric):
        return metric
    fallback = FALLBACK.get(metric)
    if fallback and has(df, fallback):
        log.warning(
            "%s: the results have no %s values (runs evaluated before the study metrics "
            "existed?); using %s instead",
            what,
            metric,
            fallback,
        )
        return fallback
    return None


def error_of(df: pd.DataFrame, column: str) -> pd.Series:
    """The Fig. 6 error of results ``column`` (``1 − column`` for IoU/Dice-like ones)."""
    one_minus = QUANTITIES[column][1]
    values = df[column].astype(float)
    return 1.0 - values if one_minus else values


def fit_metric(
    results: pd.DataFrame, column: str, *, rng: np.random.Generator, n_boot: int = 200
) -> tuple[dict[str, PowerLawBootstrap], list[str]]:
    """Power-law fits per pipeline of the error of any :data:`QUANTITIES` column.

    :func:`~medssl.analysis.powerlaw.fit_pipelines` reads an error through
    :data:`~medssl.analysis.powerlaw.ERRORS`; a column it does not list is handed over in
    place of an entry's column (with the same 1 − x convention), and the notes renamed.
    """
    name, one_minus = QUANTITIES[column]
    native = next((e for e, (c, om) in ERRORS.items() if c == column and om == one_minus), None)
    if native is not None:
        fits, notes = fit_pipelines(results, native, rng=rng, n_boot=n_boot)
        return fits, [n.replace(native, name, 1) for n in notes]
    carrier = next(e for e, (_, om) in ERRORS.items() if om == one_minus)
    carrier_col = ERRORS[carrier][0]
    df = results.assign(**{carrier_col: results[column].astype(float)})
    fits, notes = fit_pipelines(df, carrier, rng=rng, n_boot=n_boot)
    return fits, [n.replace(carrier, name, 1) for n in notes]


def efficiency_columns(df: pd.DataFrame, metric: str | Sequence[str] = STUDY_METRIC) -> list[str]:
    """The results columns figure 6 plots for ``metric``: a :data:`QUANTITIES` column or an
    error name of :data:`~medssl.analysis.powerlaw.ERRORS`, a list of them, or ``"all"``
    (every test error of ERRORS, the study's included). A study metric without values
    falls back to its
    older counterpart with a logged warning; columns without values are left out."""
    if isinstance(metric, str):
        requested = [c for c, _ in ERRORS.values()] if metric == "all" else [metric]
    else:
        requested = list(metric)
    columns: list[str] = []
    for name in requested:
        column = ERRORS[name][0] if name in ERRORS else name
        if column not in QUANTITIES:
            raise ValueError(f"unknown figure-6 metric {name!r} (known: {', '.join(QUANTITIES)})")
        column = study_metric(df, column, "figure 6") if column in FALLBACK else column
        if column is not None and has(df, column) and column not in columns:
            columns.append(column)
    return columns
