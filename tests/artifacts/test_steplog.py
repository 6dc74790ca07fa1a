"""Step-log summaries on hand-made rows."""

from __future__ import annotations

import numpy as np

from medssl.artifacts.steplog import epoch_means


def test_epoch_means_by_hand() -> None:
    rows = [
        {"epoch": "0", "step": "9", "loss": "4.0", "online_std": "0.1", "lr": "1"},
        {"epoch": "0", "step": "19", "loss": "2.0", "online_std": "", "lr": "1"},
        {"epoch": "0", "step": "19", "loss": "", "online_std": "", "samples_per_s": "5"},
        {"epoch": "1", "step": "29", "loss": "1.0", "online_std": "0.3"},
    ]
    got = epoch_means(rows)
    assert got == [
        {"epoch": 0.0, "steps": 19.0, "loss": 3.0, "online_std": 0.1},
        {"epoch": 1.0, "steps": 29.0, "loss": 1.0, "online_std": 0.3},
    ]
    (only,) = epoch_means(rows[3:], ("loss", "tau"))
    assert np.isnan(only["tau"])
    assert epoch_means([]) == []
