"""Summaries of a run's step log (``logs/metrics.csv``) kept with its small files."""

from __future__ import annotations

import numpy as np


def epoch_means(
    rows: list[dict[str, str]], keys: tuple[str, ...] = ("loss", "online_std")
) -> list[dict[str, float]]:
    """Per-epoch means of logged step values (a pretraining run's ``logs/metrics.csv``
    rows: ``epoch`` and ``step`` columns, empty cells where a row lacks a value).

    Returns:
        ``[{"epoch": e, "steps": last logged step, key: mean, ...}]`` in epoch order, for
        each epoch with a logged ``keys[0]``; a key never logged in an epoch is NaN.
    """
    by_epoch: dict[int, dict[str, list[float]]] = {}
    last: dict[int, int] = {}
    for r in rows:
        if not r.get("epoch") or not r.get(keys[0]):
            continue
        e = int(float(r["epoch"]))
        values = by_epoch.setdefault(e, {k: [] for k in keys})
        for k in keys:
            if r.get(k):
                values[k].append(float(r[k]))
        last[e] = max(last.get(e, 0), int(float(r.get("step") or 0)))
    return [
        {
            "epoch": float(e),
            "steps": float(last[e]),
            **{k: float(np.mean(v)) if v else float("nan") for k, v in by_epoch[e].items()},
        }
        for e in sorted(by_epoch)
    ]
