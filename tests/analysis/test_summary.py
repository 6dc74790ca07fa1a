"""The report summary's best pipeline per budget."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medssl.analysis.summary import best_per_budget


def test_best_pipeline_is_chosen_on_the_seeds_every_pipeline_ran() -> None:
    """A partial study: random has seeds 0–2 at budget 10, byol only seed 0. On seed 0 byol
    is better; random's mean over all three seeds is higher. The pair decides."""
    rows = [
        ("random", 10, 0, 0.50),
        ("random", 10, 1, 0.70),
        ("random", 10, 2, 0.70),
        ("byol-acdc", 10, 0, 0.55),
        ("random", 30, 0, 0.80),
        ("byol-acdc", 30, 1, 0.70),
        ("random", 100, 0, 0.90),
    ]
    main = pd.DataFrame(rows, columns=["pipeline", "budget", "seed", "iou"])
    best = best_per_budget(main, "iou").set_index("budget")
    assert best.loc[10, "best pipeline"] == "byol-acdc"
    assert best.loc[10, "mean"] == pytest.approx(0.55)
    assert best.loc[10, "margin"] == pytest.approx(0.05)
    assert best.loc[10, "seeds"] == 1 and best.loc[10, "pipelines"] == 2
    # no seed in common: each pipeline over its own seeds, and the table says so
    assert best.loc[30, "best pipeline"] == "random" and best.loc[30, "seeds"] == "unpaired"
    # one pipeline: no runner-up
    assert np.isnan(best.loc[100, "margin"]) and best.loc[100, "pipelines"] == 1
