"""The study's claims judged against results tables built with known effects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medssl.analysis.claims import (
    FIVE_EPOCHS,
    FOUR_TO_FIVE,
    HIERARCHICAL_CONVERGENCE,
    PREMISE,
    SUPERVISED_LOW_DATA,
    UNDER_100,
    VERDICTS,
    claims_display,
    claims_summary,
    judge_claims,
    pipeline_kind,
    pooled_pairs,
)
from medssl.analysis.powerlaw import PowerLawBootstrap, PowerLawFit
from medssl.analysis.stats import paired_wilcoxon

BUDGETS = (1, 3, 10, 30, 100, 300, 1498)
SEEDS = (0, 13, 42, 123, 1111)


def _results(effects: dict[str, float], *, auc: dict[str, float] | None = None) -> pd.DataFrame:
    """Main-study rows: ``paper_iou`` = a per-(budget, seed) base + the pipeline's effect
    at budgets under 100 slices (0 above), plus a tiny pipeline-specific jitter."""
    rng = np.random.default_rng(0)
    rows = []
    for b in BUDGETS:
        for s in SEEDS:
            base = 0.3 + 0.1 * np.log10(b) + rng.uniform(0, 0.05)
            for i, (p, effect) in enumerate(effects.items()):
                jitter = 1e-4 * ((s + i) % 3)
                rows.append(
                    {
                        "run_id": f"{p}-{b}-{s}",
                        "study": "main",
                        "pipeline": p,
                        "budget_kind": "slices",
                        "budget": b,
                        "labelled_slices": b,
                        "seed": s,
                        "pretrain_epoch": np.nan,
                        "paper_iou": base + (effect if b < 100 else 0.0) + jitter,
                        "curve_auc": base + (auc or {}).get(p, 0.0) + jitter,
                        "steps_to_95": 1000.0,
                    }
                )
    return pd.DataFrame(rows)


def _row(table: pd.DataFrame, claim: str, comparison: str | None = None) -> pd.Series:
    rows = table[table["claim"] == claim]
    if comparison is not None:
        rows = rows[rows["comparison"].str.startswith(comparison)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def test_pipeline_kinds_follow_the_study_names() -> None:
    assert pipeline_kind("random") == "random"
    assert pipeline_kind("supervised-imagenet") == "supervised-imagenet"
    assert pipeline_kind("byol-imagenet") == "ssl-imagenet"
    assert pipeline_kind("byol-acdc") == "specialist"
    assert pipeline_kind("mim-acdc") == "specialist"
    assert pipeline_kind("byol-imagenet+byol-acdc") == "hierarchical"


def test_pooled_pairs_match_budget_and_seed_and_drop_unmatched() -> None:
    df = _results({"random": 0.0, "byol-acdc": 0.1})
    df = df.drop(df[(df["pipeline"] == "random") & (df["seed"] == 0)].index)
    x, y = pooled_pairs(df, "byol-acdc", "random", "paper_iou", [1, 3])
    assert len(x) == len(y) == 2 * (len(SEEDS) - 1)
    np.testing.assert_allclose(x - y, 0.1, atol=1e-3)


def test_specialist_better_at_low_budgets_supports_the_premise() -> None:
    table = judge_claims(_results({"random": 0.0, "byol-acdc": 0.05, "mim-acdc": -0.05}))
    assert set(table["verdict"]) <= set(VERDICTS)
    byol = _row(table, PREMISE, "byol-acdc")
    assert byol["verdict"] == "supported"
    assert "20 pairs" in byol["evidence"]  # 4 budgets under 100 slices × 5 seeds, pooled
    assert "slice budgets 1, 3, 10, 30:" in byol["evidence"]
    assert _row(table, PREMISE, "mim-acdc")["verdict"] == "contradicted"


def test_no_difference_is_not_shown() -> None:
    df = _results({"random": 0.0, "byol-acdc": 0.0})
    # differences of alternating sign and equal size: the signed-rank test sees nothing
    sign = np.where(df["seed"].isin([0, 42]), 1.0, -1.0)
    alt = df["pipeline"] == "byol-acdc"
    df.loc[alt, "paper_iou"] = df.loc[alt, "paper_iou"] + 0.02 * sign[alt]
    table = judge_claims(df)
    assert _row(table, PREMISE, "byol-acdc")["verdict"] == "not shown"


def test_imagenet_claims_cannot_be_tested_without_imagenet_pipelines() -> None:
    table = judge_claims(_results({"random": 0.0, "byol-acdc": 0.05}))
    for claim in (
        HIERARCHICAL_CONVERGENCE,
        FOUR_TO_FIVE,
        SUPERVISED_LOW_DATA,
        UNDER_100,
        FIVE_EPOCHS,
    ):
        row = _row(table, claim)
        assert row["verdict"] == "cannot test" and "needs" in row["evidence"]
    assert "cannot test" in claims_summary(table) and "supported" in claims_summary(table)


def test_hierarchical_convergence_and_the_speedup_ratio() -> None:
    names = {"random": 0.0, "supervised-imagenet": 0.1, "byol-imagenet+byol-acdc": 0.0}
    df = _results(names, auc={"byol-imagenet+byol-acdc": 0.05})
    hier = df["pipeline"] == "byol-imagenet+byol-acdc"
    df.loc[hier, "steps_to_95"] = 200.0 + df.loc[hier, "seed"] % 10  # supervised: 1000 steps
    table = judge_claims(df)
    assert _row(table, HIERARCHICAL_CONVERGENCE)["verdict"] == "supported"
    fast = _row(table, FOUR_TO_FIVE)
    assert fast["verdict"] == "supported" and "4.95×" in fast["evidence"]
    df.loc[hier, "steps_to_95"] = 500.0 + df.loc[hier, "seed"] % 10  # only 2× faster
    slow = _row(judge_claims(df), FOUR_TO_FIVE)
    assert slow["verdict"] == "not shown" and "1.99×" in slow["evidence"]
    # supervised ImageNet is best at low budgets against both others
    assert _row(judge_claims(df), SUPERVISED_LOW_DATA)["verdict"] == "supported"


def _bootstrap(gamma: float, alpha: float, beta: float = -0.5) -> PowerLawBootstrap:
    rng = np.random.default_rng(1)
    samples = np.column_stack(
        [alpha * rng.uniform(0.9, 1.1, 200), np.full(200, beta), np.full(200, gamma)]
    )
    return PowerLawBootstrap(PowerLawFit(alpha, beta, gamma, 0.0, 10), samples, 0, 0.95, 1.0)


@pytest.mark.parametrize(
    ("alpha", "verdict"),
    [(0.5, "supported"), (4.0, "contradicted"), (1.5, "not shown")],
)
def test_under_100_reads_the_transition_interval(alpha: float, verdict: str) -> None:
    # n* = (γ/α)^(1/β) with β = −0.5, γ = 0.1: α 0.5 → 25, α 4 → 1600; α 1.5 → 225 but
    # its interval is made to straddle 100 below
    fit = _bootstrap(0.1, alpha)
    if verdict == "not shown":
        fit.samples[:100, 0] = 0.5
    df = _results({"random": 0.0, "supervised-imagenet": 0.1})
    row = _row(judge_claims(df, fits={"supervised-imagenet": fit}), UNDER_100)
    assert row["verdict"] == verdict, row["evidence"]


def test_length_study_is_described_not_tested() -> None:
    df = _results({"random": 0.0, "byol-acdc": 0.05})
    length = pd.DataFrame(
        {
            "study": "length",
            "pipeline": "byol-imagenet+byol-acdc",
            "pretrain_epoch": [1, 3, 5, 26, 401],
            "curve_auc": [0.50, 0.60, 0.695, 0.69, 0.70],
        }
    )
    row = _row(judge_claims(pd.concat([df, length], ignore_index=True)), FIVE_EPOCHS)
    assert row["verdict"] == "supported" and "0.695 vs 0.700" in row["evidence"]
    length["curve_auc"] = [0.50, 0.60, 0.65, 0.69, 0.70]
    row = _row(judge_claims(pd.concat([df, length], ignore_index=True)), FIVE_EPOCHS)
    assert row["verdict"] == "not shown"


def test_display_names_each_claim_once() -> None:
    table = judge_claims(_results({"random": 0.0, "byol-acdc": 0.05, "mim-acdc": 0.05}))
    shown = claims_display(table)
    assert (shown["claim"] == PREMISE).sum() == 1 and (table["claim"] == PREMISE).sum() == 2
    assert shown.drop(columns="claim").equals(table.drop(columns="claim"))


def test_the_verdict_follows_the_signed_rank_test_not_the_median() -> None:
    """Many small gains and fewer large losses: the median difference is positive, the
    signed ranks (and the test's significance) say a is worse. The verdict follows the
    test: contradicted, not supported."""
    from medssl.analysis.claims import _direction

    d = np.r_[np.linspace(0.001, 0.016, 16), -np.linspace(0.1, 0.5, 14)]
    test = paired_wilcoxon(d, np.zeros_like(d))
    assert test.median_diff > 0 and test.rank_biserial < 0 and test.p_value < 0.05
    assert _direction(test, test.p_value) == "contradicted"
    assert _direction(paired_wilcoxon(-d, np.zeros_like(d)), test.p_value) == "supported"
    assert _direction(test, 0.06) == "not shown"


def test_evidence_names_the_budgets_that_gave_pairs_and_when_n_is_too_small() -> None:
    """A partial study: byol ran seed 0 at 1, 3 and 10 slices only."""
    df = _results({"random": 0.0, "byol-acdc": 0.05})
    df = df[(df["pipeline"] == "random") | ((df["seed"] == 0) & (df["budget"] <= 10))]
    row = _row(judge_claims(df), PREMISE, "byol-acdc")
    assert "slice budgets 1, 3, 10, 30: 3 pairs (at budgets 1, 3, 10 only)" in row["evidence"]
    assert "smallest attainable p is 0.25" in row["evidence"]
    assert row["verdict"] == "not shown"
    # with every budget paired, no such remark
    full = _row(judge_claims(_results({"random": 0.0, "byol-acdc": 0.05})), PREMISE, "byol")
    assert "only)" not in full["evidence"] and "attainable" not in full["evidence"]
