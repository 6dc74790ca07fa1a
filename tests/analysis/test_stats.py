"""Paired Wilcoxon tests, Holm correction and summary tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medssl.analysis.stats import (
    converged_flag,
    convergence_share,
    convergence_table,
    equal_seeds,
    format_mean_std,
    holm,
    metrics_table,
    paired_wilcoxon,
    pairwise_tests,
    rank_biserial,
    shared_cells,
    unpaired_budgets,
)


def test_obvious_winner_gives_small_p_and_positive_effect() -> None:
    rng = np.random.default_rng(0)
    y = rng.uniform(0.5, 0.7, 10)
    x = y + 0.05 + rng.uniform(0, 0.01, 10)
    test = paired_wilcoxon(x, y)
    assert test.n_pairs == 10 and test.p_value < 0.01
    assert test.rank_biserial == 1.0 and test.median_diff > 0.05
    assert test.note == ""
    swapped = paired_wilcoxon(y, x)
    assert swapped.rank_biserial == -1.0 and swapped.median_diff < 0
    assert swapped.p_value == pytest.approx(test.p_value)


def test_too_few_pairs_gives_nan_with_note() -> None:
    test = paired_wilcoxon(np.array([0.9, 0.8, np.nan]), np.array([0.1, 0.2, 0.3]))
    assert test.n_pairs == 2 and np.isnan(test.p_value) and np.isnan(test.rank_biserial)
    assert "too few pairs" in test.note
    zero = paired_wilcoxon(np.ones(6), np.ones(6))
    assert np.isnan(zero.p_value) and "zero" in zero.note
    small = paired_wilcoxon(np.array([2.0, 3.0, 4.0]), np.array([1.0, 1.0, 1.0]))
    assert small.p_value == pytest.approx(0.25) and "0.25" in small.note


def test_rank_biserial_hand_example() -> None:
    # |d| ranks 1, 2, 3; positive ranks 1 + 3, negative 2
    assert rank_biserial(np.array([1.0, -2.0, 3.0])) == pytest.approx(1 / 3)
    assert rank_biserial(np.array([0.0, 1.0])) == 1.0
    assert np.isnan(rank_biserial(np.zeros(3)))


def test_holm_hand_example() -> None:
    adjusted = holm([0.01, 0.04, 0.03, np.nan])
    np.testing.assert_allclose(adjusted[:3], [0.03, 0.06, 0.06])
    assert np.isnan(adjusted[3])
    assert np.all(holm([0.5, 0.9]) <= 1.0)
    assert np.isnan(holm([np.nan])).all()


def _table(seeds: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for budget in (3, 30):
        for s in range(seeds):
            base = rng.uniform(0.5, 0.6)
            for pipeline, gain in (("random", 0.0), ("byol", 0.1), ("other", 0.0)):
                rows.append(
                    {
                        "study": "main",
                        "pipeline": pipeline,
                        "budget": budget,
                        "seed": s,
                        "test_slice_iou_mean": base + gain + rng.normal(0, 0.005),
                    }
                )
    return pd.DataFrame(rows)


def test_pairwise_tests_against_reference_and_all_pairs() -> None:
    table = pairwise_tests(_table(), reference="random")
    assert len(table) == 4 and set(table["pipeline_b"]) == {"random"}
    byol = table[table["pipeline_a"] == "byol"]
    assert (byol["p_value"] < 0.01).all() and (byol["rank_biserial"] == 1).all()
    assert (table["p_holm"] >= table["p_value"]).all()
    other = table[table["pipeline_a"] == "other"]
    assert (other["p_holm"] > 0.05).all()
    every = pairwise_tests(_table(), correct=False)
    assert len(every) == 6 and "p_holm" not in every
    few = pairwise_tests(_table(seeds=2))
    assert few["p_value"].isna().all() and few["note"].str.contains("too few").all()


def test_metrics_table_mean_std_and_formatting() -> None:
    df = pd.DataFrame(
        {
            "pipeline": ["a", "a", "b"],
            "budget": [1, 1, 1],
            "seed": [0, 1, 0],
            "test_slice_iou_mean": [0.5, 0.7, 0.9],
        }
    )
    table = metrics_table(df, metrics=("test_slice_iou_mean", "absent"))
    a = table[table["pipeline"] == "a"].iloc[0]
    assert a["n"] == 2 and a["test_slice_iou_mean_mean"] == pytest.approx(0.6)
    assert a["test_slice_iou_mean_std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    text = format_mean_std(table, digits=2)
    assert list(text.columns) == ["budget", "pipeline", "n", "test_slice_iou_mean"]
    assert text["test_slice_iou_mean"].tolist() == ["0.60 ± 0.14", "0.90"]


def test_convergence_table_fills_from_curves() -> None:
    results = pd.DataFrame(
        {
            "run_id": ["r1", "r2", "r3"],
            "study": "main",
            "pipeline": ["fast", "fast", "slow"],
            "budget": 1,
            "seed": [0, 1, 0],
            "steps_to_95": [np.nan, 5.0, np.nan],
            "curve_auc": [np.nan, 0.9, np.nan],
        }
    )
    steps = [0, 10, 20, 30]
    curves = pd.DataFrame(
        {
            "run_id": np.repeat(["r1", "r3"], 4),
            "step": steps * 2,
            "val_iou": [0.0, 1.0, 1.0, 1.0, 0.0, 0.2, 0.6, 1.0],
        }
    )
    table = convergence_table(results, curves).set_index("pipeline")
    assert list(table.index) == ["fast", "slow"]  # sorted by median AUC
    assert table.loc["fast", "n_runs"] == 2
    # r1: steps_to_95 = 10, AUC = (5 + 10 + 10) / 30
    assert table.loc["fast", "steps_to_95_median"] == pytest.approx(7.5)
    assert table.loc["fast", "auc_median"] == pytest.approx((25 / 30 + 0.9) / 2)
    assert table.loc["slow", "steps_to_95_median"] == 30
    assert table.loc["slow", "auc_q25"] <= table.loc["slow", "auc_median"]


def test_paired_convergence_table_pools_only_cells_every_pipeline_ran() -> None:
    """random ran budgets 1 and 100 (seeds 0, 1); byol only budget 1, seed 0. Pooled over
    all runs, random's AUC is lifted by budget 100; paired, both use cell (1, 0) only."""
    results = pd.DataFrame(
        {
            "run_id": ["r10", "r11", "r1000", "r1001", "b10"],
            "study": "main",
            "pipeline": ["random"] * 4 + ["byol"],
            "budget": [1, 1, 100, 100, 1],
            "seed": [0, 1, 0, 1, 0],
            "steps_to_95": [100.0, 100.0, 300.0, 300.0, 50.0],
            "curve_auc": [0.2, 0.2, 0.8, 0.8, 0.3],
        }
    )
    cells = shared_cells(results)
    assert sorted(cells["run_id"]) == ["b10", "r10"]
    paired = convergence_table(shared_cells(results)).set_index("pipeline")
    assert list(paired.index) == ["byol", "random"]
    assert paired.loc["random", "n_runs"] == 1
    assert paired.loc["random", "auc_median"] == pytest.approx(0.2)
    pooled = convergence_table(results).set_index("pipeline")
    assert pooled.index[0] == "random" and pooled.loc["random", "n_runs"] == 4


def _runs_at_one_budget(
    steps: np.ndarray, curves: dict[str, np.ndarray], converged: list
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Results and curves of random-init runs at budget 10, seeds 0, 1, …: one per curve."""
    names = list(curves)
    curve_table = pd.DataFrame(
        {
            "run_id": np.repeat(names, steps.size),
            "step": np.tile(steps, len(names)),
            "val_iou": np.concatenate([curves[n] for n in names]),
        }
    )
    results = pd.DataFrame(
        {
            "run_id": names,
            "study": "main",
            "pipeline": "random",
            "budget": 10,
            "seed": range(len(names)),
            "converged": pd.Series(converged, dtype=object),
        }
    )
    return results, curve_table


def test_convergence_share_counts_runs_still_rising_from_the_curves() -> None:
    """Two runs miss the range rule: one still climbs, one jitters on a plateau."""
    steps = np.arange(0, 1001, 100)
    climbing = np.linspace(0.2, 0.9, steps.size)
    jitter = np.r_[np.linspace(0.2, 0.8, 8), [0.79, 0.81, 0.79]]
    results, curves = _runs_at_one_budget(steps, {"up": climbing, "flat": jitter}, [False, False])
    row = convergence_share(results, curves).iloc[0]
    assert row["runs"] == 2 and row["converged"] == 0
    assert row["still rising"] == 1
    assert row["median rise"] == pytest.approx(
        (0.14 + np.polyfit([800, 900, 1000], [0.79, 0.81, 0.79], 1)[0] * 200) / 2
    )
    assert "still rising" not in convergence_share(results).columns


def test_equal_seeds_keeps_per_budget_the_seeds_every_pipeline_there_ran() -> None:
    rows = [
        ("random", 1, 0),
        ("random", 1, 1),
        ("byol", 1, 0),
        ("random", 30, 0),
        ("random", 30, 1),  # byol never ran 30: both random seeds stay
    ]
    df = pd.DataFrame(rows, columns=["pipeline", "budget", "seed"]).assign(study="main")
    length = pd.DataFrame([{"pipeline": "byol", "budget": 1, "seed": 5, "study": "length"}])
    df = pd.concat([df, length])
    df = df.reset_index(drop=True)
    kept = equal_seeds(df)
    assert sorted(map(tuple, kept[["pipeline", "budget", "seed", "study"]].to_numpy())) == sorted(
        [
            ("byol", 1, 0, "main"),
            ("random", 1, 0, "main"),
            ("random", 30, 0, "main"),
            ("random", 30, 1, "main"),
            ("byol", 1, 5, "length"),  # other studies untouched
        ]
    )


def test_equal_seeds_survives_a_duplicate_index_and_keeps_unpaired_budgets() -> None:
    """Tables glued with pd.concat keep duplicate labels; a budget whose pipelines share
    no seed keeps every run (nothing to pair); ``runs`` filters another table by run."""
    a = pd.DataFrame(
        {
            "run_id": ["r0", "r1", "b0"],
            "pipeline": ["random", "random", "byol"],
            "budget": 1,
            "seed": [0, 1, 0],
            "study": "main",
        }
    )
    b = pd.DataFrame(
        {
            "run_id": ["r5", "b6"],
            "pipeline": ["random", "byol"],
            "budget": 30,
            "seed": [5, 6],
            "study": "main",
        }
    )
    df = pd.concat([a, b])  # index 0, 1, 2, 0, 1
    kept = equal_seeds(df)
    assert sorted(kept["run_id"]) == ["b0", "b6", "r0", "r5"]
    assert unpaired_budgets(df) == [30]
    curves = pd.DataFrame(
        {
            "run_id": ["r0", "r1", "r1", "b0"],
            "pipeline": ["random", "random", "random", "byol"],
            "budget": 1,
            "seed": [0, 1, 1, 0],
            "study": "main",
            "step": [1, 1, 2, 1],
        }
    )
    assert sorted(equal_seeds(curves, df)["run_id"]) == ["b0", "r0"]


def test_converged_flag_reads_every_stored_form_and_rising_needs_a_known_flag() -> None:
    flags = pd.Series([True, "True", 1, 1.0, False, "False", 0.0, None], dtype=object)
    assert converged_flag(flags).tolist() == [True] * 4 + [False] * 4
    steps = np.arange(0, 1001, 100)
    climbing = np.linspace(0.2, 0.9, steps.size)
    curve = {"up": climbing, "unknown": climbing}
    results, curves = _runs_at_one_budget(steps, curve, [0.0, None])
    row = convergence_share(results, curves).iloc[0]
    assert row["runs"] == 1 and row["still rising"] == 1  # the unknown run is not counted
