"""Provenance text of a report: which pretraining runs' weights each pipeline's
fine-tunes loaded, and the pretraining section."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from medssl.analysis.provenance import pretraining_section, realisations_text


def _pretraining_runs() -> pd.DataFrame:
    """One pipeline's pretraining job run twice: a superseded run (weights ``aaaa``) and
    the current one (``bbbb``), three epochs each."""
    rows = []
    for run_id, old, fp, losses in (
        ("p1.1", True, "aaaa", [1.0, 0.8, 0.7]),
        ("p1", False, "bbbb", [1.0, 0.9, 0.75]),
    ):
        for epoch, loss in enumerate(losses):
            rows.append(
                {"run_id": run_id, "pipeline": "byol-x", "method": "byol", "epoch": epoch,
                 "steps": 10 * (epoch + 1), "loss": loss, "collapsed": False,
                 "superseded": old, "encoder_fingerprint": fp, "wall_s": 5.0}
            )  # fmt: skip
    return pd.DataFrame(rows)


def test_fine_tunes_from_two_pretraining_runs_are_named_with_their_run() -> None:
    results = pd.DataFrame(
        {
            "run_id": ["a", "b", "c", "d"],
            "pipeline": ["byol-x", "byol-x", "byol-x", "random"],
            "init_fingerprint": ["aaaa", "aaaa", "bbbb", ""],
        }
    )
    text = realisations_text(results, _pretraining_runs())
    assert "aaaa (2 runs; pretraining run p1.1 (superseded))" in text
    assert "bbbb (1 run; pretraining run p1)" in text and "random" not in text
    assert realisations_text(results.iloc[:2]) is None  # one fingerprint: nothing to say
    # without a pretraining table the fingerprints are still listed
    assert "aaaa (2 runs)" in realisations_text(results)
    # a length study's per-epoch encoders differ by design: not a second realisation
    epochs = results.assign(pretrain_epoch=[np.nan, np.nan, 3.0, np.nan])
    assert realisations_text(epochs, _pretraining_runs()) is None
    # ... but two runs behind one epoch's fine-tunes are reported for that epoch
    epochs = results.assign(pretrain_epoch=[3.0, np.nan, 3.0, np.nan])
    text = realisations_text(epochs, _pretraining_runs())
    assert "byol-x (encoder of epoch 3): " in text and "byol-x: " not in text
    # a re-run that reproduced the same weights: both runs are named
    same = _pretraining_runs().assign(encoder_fingerprint="aaaa")
    text = realisations_text(results, same)
    assert "aaaa (2 runs; pretraining runs p1.1 (superseded), p1)" in text


def test_pretraining_section_names_each_run_of_a_job_run_twice(tmp_path: Path) -> None:
    sec, paths = pretraining_section(_pretraining_runs(), tmp_path)
    (table,) = [b[1] for b in sec.blocks if b[0] == "table"]
    # oldest first, as collect orders them
    assert list(table["run"]) == ["p1.1 (superseded), weights aaaa", "p1, weights bbbb"]
    assert list(table["last-epoch loss"].astype(float)) == [0.7, 0.75]
    assert any(p.suffix == ".png" for p in paths)
    one = _pretraining_runs().query("run_id == 'p1'")
    (table,) = [b[1] for b in pretraining_section(one, tmp_path)[0].blocks if b[0] == "table"]
    assert "run" not in table  # a single run per pipeline: no run column
