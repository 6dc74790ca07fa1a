"""Power-law fits: parameter recovery, bootstrap coverage, transition budget."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medssl.analysis.powerlaw import (
    PARAMS,
    bootstrap_power_law,
    fit_pipelines,
    fit_power_law,
    fits_table,
    power_law,
    transition_budget,
)

BUDGETS = np.array([1, 3, 7, 15, 30, 75, 150, 300, 749, 1498])


def noisy(
    alpha: float, beta: float, gamma: float, seeds: int, sd: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Errors with multiplicative log-normal noise at every budget × seed."""
    n = np.repeat(BUDGETS, seeds)
    err = power_law(n, alpha, beta, gamma) * np.exp(rng.normal(0, sd, n.size))
    return n, err, np.tile(np.arange(seeds), BUDGETS.size)


def test_transition_hand_example() -> None:
    # 1·n^-1 = 0.01 at n = 100, where the error is 2γ
    assert transition_budget(1.0, -1.0, 0.01) == pytest.approx(100.0)
    assert power_law(np.array([100.0]), 1.0, -1.0, 0.01)[0] == pytest.approx(0.02)
    # reducible part at half the floor: 1/n = 0.005
    assert transition_budget(1.0, -1.0, 0.01, fraction=0.5) == pytest.approx(200.0)
    # β = -0.5: sqrt(n) = 4 / 0.1
    assert transition_budget(4.0, -0.5, 0.1) == pytest.approx(1600.0)
    assert transition_budget(1.0, -1.0, 0.0) == np.inf
    assert np.isnan(transition_budget(1.0, 0.2, 0.1))
    assert np.isnan(transition_budget(-1.0, -0.5, 0.1))


@pytest.mark.parametrize("space", ["log", "linear"])
def test_fit_is_exact_on_noise_free_data(space: str) -> None:
    n = BUDGETS.astype(float)
    fit = fit_power_law(n, power_law(n, 0.6, -0.6, 0.08), space=space)
    assert (fit.alpha, fit.beta, fit.gamma) == pytest.approx((0.6, -0.6, 0.08), rel=1e-4)
    assert fit.rmse < 1e-6 and fit.n_points == n.size


@pytest.mark.parametrize("truth", [(0.6, -0.6, 0.08), (1.2, -0.35, 0.15), (0.3, -1.0, 0.05)])
def test_fit_recovers_parameters_from_noisy_data(truth: tuple[float, float, float]) -> None:
    n, err, _ = noisy(*truth, seeds=5, sd=0.05, rng=np.random.default_rng(1))
    fit = fit_power_law(n, err)
    alpha, beta, gamma = truth
    assert fit.alpha == pytest.approx(alpha, rel=0.1)
    assert fit.beta == pytest.approx(beta, abs=0.08)
    assert fit.gamma == pytest.approx(gamma, rel=0.1)
    assert fit.transition() == pytest.approx(transition_budget(*truth), rel=0.35)
    assert -4 <= fit.beta < 0 and fit.gamma >= 0


def test_fit_rejects_too_few_budgets() -> None:
    with pytest.raises(ValueError, match="distinct"):
        fit_power_law(np.array([1, 1, 3, 3, 7]), np.array([0.5, 0.5, 0.3, 0.3, 0.2]))
    with pytest.raises(ValueError, match="finite"):
        fit_power_law(BUDGETS, np.full(BUDGETS.size, np.nan))


def test_bootstrap_intervals_cover_truth_in_most_datasets() -> None:
    truth = (0.6, -0.6, 0.08)
    true_values = [*truth, transition_budget(*truth)]
    covered = np.zeros(4, int)
    datasets = 8
    for k in range(datasets):
        rng = np.random.default_rng(100 + k)
        n, err, seeds = noisy(*truth, seeds=5, sd=0.05, rng=rng)
        boot = bootstrap_power_law(n, err, seeds, rng=rng, n_boot=100)
        cis = [boot.param_ci(p) for p in PARAMS] + [boot.ci(boot.transitions())]
        for i, ((lo, hi), value) in enumerate(zip(cis, true_values, strict=True)):
            assert lo <= hi
            covered[i] += lo <= value <= hi
        assert boot.n_failed == 0 and boot.samples.shape == (100, 3)
    assert np.all(covered >= datasets - 2), covered


def test_bootstrap_is_reproducible_and_band_brackets_fit() -> None:
    n, err, seeds = noisy(0.6, -0.6, 0.08, seeds=3, sd=0.05, rng=np.random.default_rng(5))
    a = bootstrap_power_law(n, err, seeds, rng=np.random.default_rng(7), n_boot=30)
    b = bootstrap_power_law(n, err, seeds, rng=np.random.default_rng(7), n_boot=30)
    c = bootstrap_power_law(
        n, err, seeds, rng=np.random.default_rng(8), n_boot=30, resample="seeds"
    )
    np.testing.assert_array_equal(a.samples, b.samples)
    assert not np.array_equal(a.samples, c.samples)
    grid = np.logspace(0, 3, 20)
    lo, hi = a.band(grid)
    assert np.all(lo <= hi)
    inside = (lo <= a.fit.predict(grid)) & (a.fit.predict(grid) <= hi)
    assert inside.mean() > 0.9
    with pytest.raises(ValueError, match="groups"):
        bootstrap_power_law(n, err, rng=np.random.default_rng(0), resample="seeds")


def test_fit_pipelines_skips_pipelines_with_few_budgets() -> None:
    rng = np.random.default_rng(3)
    rows = []
    for pipeline, budgets in (("good", BUDGETS), ("short", BUDGETS[:3])):
        for b in budgets:
            for s in range(3):
                err = power_law(b, 0.6, -0.6, 0.08) * np.exp(rng.normal(0, 0.03))
                rows.append(
                    {
                        "study": "main",
                        "pipeline": pipeline,
                        "labelled_slices": b,
                        "budget": b,
                        "seed": s,
                        "test_slice_iou_mean": 1 - err,
                    }
                )
    rows.append({**rows[0], "study": "length", "test_slice_iou_mean": 0.0})  # ignored
    fits, notes = fit_pipelines(pd.DataFrame(rows), rng=np.random.default_rng(0), n_boot=20)
    assert list(fits) == ["good"]
    assert len(notes) == 1 and "short" in notes[0] and "3 distinct budgets" in notes[0]
    table = fits_table(fits)
    row = table.iloc[0]
    for name in (*PARAMS, "transition"):
        assert row[f"{name}_lo"] <= row[f"{name}_hi"]
    assert row["n_points"] == 30 and row["n_boot_ok"] + row["n_boot_failed"] == 20
    assert row["gamma"] == pytest.approx(0.08, rel=0.15)


def _one_run_per_budget(pipeline: str) -> pd.DataFrame:
    """A pipeline with seed 0 only, at every budget, on an exact power law."""
    return pd.DataFrame(
        {
            "run_id": f"{pipeline}-{b}",
            "study": "main",
            "pipeline": pipeline,
            "labelled_slices": b,
            "budget": b,
            "seed": 0,
            "test_slice_iou_mean": 1 - power_law(b, 0.6, -0.6, 0.08),
        }
        for b in BUDGETS
    )


def test_one_run_per_budget_gives_a_fit_without_an_interval() -> None:
    """Resampling within budgets cannot vary single runs: no bootstrap, no interval (not a
    zero-width one that reads as certainty), and a note that says why."""
    fits, notes = fit_pipelines(
        _one_run_per_budget("one-seed"), rng=np.random.default_rng(0), n_boot=20
    )
    assert fits["one-seed"].samples.shape[0] == 0
    row = fits_table(fits).iloc[0]
    assert row["gamma"] == pytest.approx(0.08, rel=0.05)
    assert np.isnan(row["gamma_lo"]) and np.isnan(row["transition_hi"])
    assert any("one run per budget" in n and "no bootstrap interval" in n for n in notes)
    from medssl.analysis.report import power_law_display

    shown = power_law_display(fits_table(fits), max(BUDGETS)).iloc[0]
    assert "[" not in shown["γ (irreducible)"] and shown["bootstrap fits"] == "0/0"


def test_astronomical_transitions_are_written_in_scientific_notation() -> None:
    from medssl.analysis.report import _slices

    assert _slices(1498.0) == "1498" and _slices(7.25) == "7.2"
    assert _slices(5.3e70) == "5.3e+70"


def test_a_fit_without_bootstrap_gets_no_interval_in_claims_or_figure(tmp_path) -> None:
    from medssl.analysis import figures
    from medssl.analysis.claims import _under_100

    df = _one_run_per_budget("supervised-imagenet")
    fits, _ = fit_pipelines(df, rng=np.random.default_rng(0), n_boot=20)
    verdict = _under_100(fits["supervised-imagenet"], "supervised-imagenet")
    assert "no bootstrap interval" in verdict.evidence and "nan" not in verdict.evidence
    assert verdict.verdict == "not shown"
    out = figures.plot_data_efficiency(
        df, tmp_path / "fig6", metric="test_slice_iou_mean", fits={"1 − mean IoU": fits}
    )
    lines = [ln for ax in out.figure.axes for ln in ax.get_lines()]
    assert not [ln for ln in lines if ln.get_gid() == "transition-ci"]
