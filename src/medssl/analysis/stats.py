"""Paired statistics between pipelines and summary tables of the study results.

Pipelines are compared run against run: for one label budget, the fine-tune of pipeline A
with seed s and that of pipeline B with the same seed used the same labelled subset, so the
seed pairs them. Tests are Wilcoxon signed-rank tests with the matched-pairs rank-biserial
correlation as effect size (Kerby, "The simple difference formula", Compr. Psychol. 2014).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.stats import rankdata, wilcoxon

from medssl.analysis.curves import SETTLED_TOLERANCE, curve_auc, steps_to_fraction, tail_rise

log = logging.getLogger(__name__)

TEST_METRICS = (
    "test_slice_iou_mean",
    "test_jaccard_loss",
    "test_dice_3d_mean",
    "test_slice_iou_RV",
    "test_slice_iou_MYO",
    "test_slice_iou_LV",
    "test_hd95_RV",
    "test_hd95_MYO",
    "test_hd95_LV",
)


@dataclass(frozen=True)
class PairedTest:
    """Outcome of one paired comparison of x against y (differences d = x − y)."""

    n_pairs: int
    median_diff: float
    statistic: float
    p_value: float
    rank_biserial: float
    note: str = ""


def rank_biserial(diff: np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation r = (T⁺ − T⁻) / (T⁺ + T⁻) ∈ [−1, 1].

    T⁺ and T⁻ are the sums of the ranks of |d| over positive and negative differences; zero
    differences are dropped (as ``wilcoxon(zero_method="wilcox")`` does). r = 1 when every
    pair favours x. NaN when no difference is non-zero.
    """
    d = np.asarray(diff, float)
    d = d[np.isfinite(d) & (d != 0)]
    if d.size == 0:
        return float("nan")
    ranks = rankdata(np.abs(d))
    return float((ranks[d > 0].sum() - ranks[d < 0].sum()) / ranks.sum())


def paired_wilcoxon(x: np.ndarray, y: np.ndarray, *, min_pairs: int = 3) -> PairedTest:
    """Two-sided Wilcoxon signed-rank test of paired samples x and y, shape (N,) each.

    Pairs with a non-finite member are dropped. With fewer than ``min_pairs`` pairs, or when
    every difference is zero, the p-value is NaN and ``note`` says why. The note also says
    when N is so small that the exact test cannot reach p < 0.05 (N ≤ 5).
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    d = x[keep] - y[keep]
    n = int(d.size)
    med = float(np.median(d)) if n else float("nan")
    if n < min_pairs:
        return PairedTest(
            n, med, float("nan"), float("nan"), float("nan"), f"too few pairs ({n} < {min_pairs})"
        )
    if not np.any(d != 0):
        return PairedTest(
            n, med, float("nan"), float("nan"), float("nan"), "all differences are zero"
        )
    res = wilcoxon(d, zero_method="wilcox", alternative="two-sided")
    nonzero = int(np.count_nonzero(d))
    note = ""
    if nonzero <= 5:
        note = f"n={nonzero}: smallest attainable p is {2.0 ** (1 - nonzero):.3g}"
    return PairedTest(n, med, float(res.statistic), float(res.pvalue), rank_biserial(d), note)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values; NaN entries stay NaN and do not count as tests."""
    p = np.asarray(pvalues, float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    m = order.size
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out


def main_study(results: pd.DataFrame) -> pd.DataFrame:
    """Rows of the main (pipelines × budgets × seeds) study."""
    return results[results["study"] == "main"] if "study" in results else results


def pairwise_tests(
    results: pd.DataFrame,
    metric: str = "test_slice_iou_mean",
    *,
    reference: str | None = None,
    correct: bool = True,
    min_pairs: int = 3,
) -> pd.DataFrame:
    """Paired Wilcoxon tests between pipelines at every budget of the main study.

    Args:
        results: the study results table.
        metric: column compared; differences are ``pipeline_a − pipeline_b``.
        reference: compare every pipeline against this one (it is ``pipeline_b``);
            ``None`` compares all pairs.
        correct: add ``p_holm``, Holm-adjusted over all tests in the returned table.
        min_pairs: fewer matched seeds give a NaN p-value (see :func:`paired_wilcoxon`).

    Returns:
        One row per (budget, pipeline_a, pipeline_b) with the :class:`PairedTest` fields.
    """
    df = main_study(results)
    rows = []
    for budget, sub in df.groupby("budget", sort=True):
        wide = sub.pivot_table(index="seed", columns="pipeline", values=metric, aggfunc="mean")
        names = sorted(wide.columns)
        if reference is None:
            pairs = list(combinations(names, 2))
        else:
            pairs = [(p, reference) for p in names if p != reference and reference in names]
        for a, b in pairs:
            test = paired_wilcoxon(wide[a].to_numpy(), wide[b].to_numpy(), min_pairs=min_pairs)
            rows.append({"budget": int(budget), "pipeline_a": a, "pipeline_b": b, **asdict(test)})
    columns = ["budget", "pipeline_a", "pipeline_b", *PairedTest.__dataclass_fields__]
    table = pd.DataFrame(rows, columns=columns)
    if correct:
        table.insert(table.columns.get_loc("p_value") + 1, "p_holm", holm(table["p_value"]))
    return table


def curve_summaries(curves: pd.DataFrame, fraction: float = 0.95) -> pd.DataFrame:
    """Per run: learning-curve AUC, steps to ``fraction`` of the final value, final val IoU."""
    rows = []
    for run_id, sub in curves.groupby("run_id", sort=False):
        s, v = sub["step"].to_numpy(float), sub["val_iou"].to_numpy(float)
        rows.append(
            {
                "run_id": run_id,
                "curve_auc": curve_auc(s, v),
                "steps_to_95": steps_to_fraction(s, v, fraction),
                "final_val_iou": float(v[np.argmax(s)]) if v.size else float("nan"),
            }
        )
    return pd.DataFrame(rows, columns=["run_id", "curve_auc", "steps_to_95", "final_val_iou"])


def with_curve_summaries(results: pd.DataFrame, curves: pd.DataFrame | None) -> pd.DataFrame:
    """``results`` with NaN ``curve_auc``/``steps_to_95`` filled from the curves table."""
    out = results.copy()
    for col in ("curve_auc", "steps_to_95"):
        if col not in out:
            out[col] = np.nan
    if curves is None or curves.empty:
        return out
    summ = curve_summaries(curves).set_index("run_id")
    for col in ("curve_auc", "steps_to_95"):
        out[col] = out[col].astype(float).fillna(out["run_id"].map(summ[col]))
    return out


def _median_iqr(values: pd.Series) -> dict[str, float]:
    v = values.dropna().to_numpy(float)
    if v.size == 0:
        return {"median": np.nan, "q25": np.nan, "q75": np.nan}
    q25, med, q75 = np.percentile(v, [25, 50, 75])
    return {"median": float(med), "q25": float(q25), "q75": float(q75)}


def shared_cells(results: pd.DataFrame) -> pd.DataFrame:
    """The rows whose (budget, seed) cell every pipeline in ``results`` ran.

    The same seed at the same budget draws the same labelled subset, so these rows compare
    pipelines on the same data; a partial study's pipelines otherwise cover different
    budgets and seeds, and pooling over them mixes budgets (a pipeline run only at small
    budgets would look worse than one run at all of them).
    """
    if results.empty:
        return results
    k = results["pipeline"].nunique()
    ran = results.groupby(["budget", "seed"])["pipeline"].transform("nunique")
    return results[ran == k]


def equal_seeds(df: pd.DataFrame, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """The main-study rows whose seed every pipeline at that budget ran (other studies'
    rows as they are).

    Per budget, the pipelines that ran it are compared on the same labelled subsets: a
    partial study where one pipeline has more seeds than another would otherwise average
    them over different subsets (at few labels the subset decides much of the result). A
    budget whose pipelines share no seed at all keeps every row (nothing to pair; the
    report calls it unpaired). ``runs`` (the results table) decides which runs are kept
    when ``df`` is another table keyed by ``run_id``, e.g. the curves, so both keep the
    same runs.
    """
    if df.empty:
        return df
    if runs is not None:
        kept = set(equal_seeds(runs)["run_id"])
        main = _is_main(df)
        return df[~main | df["run_id"].isin(kept).to_numpy()]
    main = _is_main(df)
    paired, shared = _seed_overlap(df[main])
    keep = np.ones(len(df), bool)
    keep[np.flatnonzero(main)] = paired | ~shared
    return df[keep]


def unpaired_budgets(results: pd.DataFrame) -> list:
    """Main-study budgets with several pipelines that share no seed."""
    sub = main_study(results)
    _, shared = _seed_overlap(sub)
    return sorted(sub.loc[~shared, "budget"].unique())


def _seed_overlap(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per row: whether every pipeline at its budget ran its seed, and whether its budget
    has any such seed (always, with a single pipeline there)."""
    rows = rows.reset_index(drop=True)
    k = rows.groupby("budget")["pipeline"].transform("nunique")
    paired = rows.groupby(["budget", "seed"])["pipeline"].transform("nunique") == k
    shared = paired.groupby(rows["budget"]).transform("any")
    return paired.to_numpy(bool), shared.to_numpy(bool)


def _is_main(df: pd.DataFrame) -> np.ndarray:
    return (df["study"] == "main").to_numpy() if "study" in df else np.ones(len(df), bool)


def converged_flag(values: pd.Series) -> pd.Series:
    """The ``converged`` column as booleans (True, 1, 1.0 or "True" count; unknown is
    False: pair with ``values.notna()``)."""
    return values.map(lambda v: v is True or str(v) in ("True", "1", "1.0") or v == 1)


def convergence_table(
    results: pd.DataFrame,
    curves: pd.DataFrame | None = None,
    *,
    by_budget: bool = False,
) -> pd.DataFrame:
    """Steps to 95 % of the final validation IoU and learning-curve AUC per pipeline.

    Median and inter-quartile range over the main study's runs (all budgets pooled unless
    ``by_budget``); missing per-run values are computed from ``curves`` when given. Pass
    :func:`shared_cells` of the results to pool only the cells every pipeline ran.

    Returns:
        Columns ``pipeline`` (+ ``budget``), ``n_runs``, ``steps_to_95_{median,q25,q75}``,
        ``auc_{median,q25,q75}``, sorted by descending median AUC.
    """
    main = main_study(results)
    df = with_curve_summaries(main, curves)
    keys = ["pipeline", "budget"] if by_budget else ["pipeline"]
    rows = []
    for key, sub in df.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(keys, key, strict=True))
        row["n_runs"] = len(sub)
        row |= {f"steps_to_95_{k}": v for k, v in _median_iqr(sub["steps_to_95"]).items()}
        row |= {f"auc_{k}": v for k, v in _median_iqr(sub["curve_auc"]).items()}
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    if by_budget:
        return table.sort_values(
            ["budget", "auc_median"], ascending=[True, False], ignore_index=True
        )
    return table.sort_values("auc_median", ascending=False, ignore_index=True)


def metrics_table(
    results: pd.DataFrame, metrics: Sequence[str] = TEST_METRICS, study: str = "main"
) -> pd.DataFrame:
    """Mean and standard deviation over seeds of test metrics per budget and pipeline.

    Args:
        results: the results table.
        metrics: the metric columns to summarise (those present are).
        study: the sub-study whose rows are summarised (``main``, or a further budget
            family such as ``patients``).

    Returns:
        Columns ``budget``, ``pipeline``, ``n`` and ``{metric}_mean``/``{metric}_std`` for
        each metric present in ``results``.
    """
    df = results[results["study"] == study] if "study" in results else results
    present = [m for m in metrics if m in df]
    grouped = df.groupby(["budget", "pipeline"], sort=True)
    table = grouped.size().rename("n").to_frame()
    for m in present:
        table[f"{m}_mean"] = grouped[m].mean()
        table[f"{m}_std"] = grouped[m].std(ddof=1)
    return table.reset_index()


def format_mean_std(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Merge ``*_mean``/``*_std`` column pairs into ``"0.812 ± 0.013"`` strings."""
    bases = [
        c.removesuffix("_mean")
        for c in table
        if c.endswith("_mean") and c.removesuffix("_mean") + "_std" in table
    ]
    out = table.drop(columns=[f"{b}_{k}" for b in bases for k in ("mean", "std")])
    for base in bases:
        out[base] = [
            (
                "—"
                if not np.isfinite(m)
                else f"{m:.{digits}f}" + ("" if not np.isfinite(s) else f" ± {s:.{digits}f}")
            )
            for m, s in zip(table[f"{base}_mean"], table[f"{base}_std"], strict=True)
        ]
    return out


def convergence_share(results: pd.DataFrame, curves: pd.DataFrame | None = None) -> pd.DataFrame:
    """Share of runs whose validation curve converged (``converged`` column, issue 15's
    rule) per sub-study, pipeline and budget.

    With ``curves``, also how many runs that miss the rule are still rising
    (:func:`tail_rise` ≥ the rule's 0.01 IoU: a line fitted to the last 20 % of the curve
    gains at least that much) and the median rise, which tell a curve still improving from
    a noisy plateau.

    Returns:
        Columns ``study``, ``pipeline``, ``budget``, ``runs``, ``converged`` (count) and
        ``share`` (+ ``still rising``, ``median rise`` with curves); empty when the table
        has no ``converged`` column.
    """
    cols = ["study", "pipeline", "budget", "runs", "converged", "share"]
    if "converged" not in results or results.empty:
        return pd.DataFrame(columns=cols)
    flag = converged_flag(results["converged"])
    known = results["converged"].notna()
    df = results.assign(_flag=flag & known, _known=known)
    aggs = {"runs": ("_known", "sum"), "converged": ("_flag", "sum")}
    if curves is not None and not curves.empty:
        rises = {
            run: tail_rise(g["step"].to_numpy(float), g["val_iou"].to_numpy(float))
            for run, g in curves.groupby("run_id", sort=False)
        }
        rise = df["run_id"].map(lambda r: rises.get(r)).astype(float)
        rising = (rise >= SETTLED_TOLERANCE) & ~df["_flag"] & df["_known"]
        df = df.assign(_rise=rise, _rising=rising)
        aggs |= {"still rising": ("_rising", "sum"), "median rise": ("_rise", "median")}
        cols += ["still rising", "median rise"]
    grouped = df.groupby(["study", "pipeline", "budget"], sort=True)
    out = grouped.agg(**aggs).reset_index()
    out["share"] = out["converged"] / out["runs"].where(out["runs"] > 0)
    return out[cols]
