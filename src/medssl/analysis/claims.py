"""The original study's claims, each judged against a study's results.

The claims are the sentences of the study's abstract (Kalapos & Gyires-Tóth, "Self-Supervised
Pretraining for 2D Medical Image Segmentation", ECCV 2022 workshops) that a results table
can speak to. Each gets one verdict per comparison:

- ``supported`` / ``contradicted``: the pooled paired test (below) is significant at
  :data:`ALPHA` after Holm adjustment over the claim's comparisons, in the claimed / the
  opposite direction;
- ``not shown``: every pipeline the claim needs ran, but the test is not significant (or
  a size the claim states is not reached);
- ``cannot test``: a pipeline or sub-study the claim needs is not in the results.

**Pooled pairs.** Per budget a study has few seeds (5 here: the exact two-sided Wilcoxon
test then cannot go below p = 0.0625), so a claim about a data regime pools the paired
runs of all its budgets: pipeline A and pipeline B fine-tuned with the same seed at the
same budget used the same labelled subset, and each such (budget, seed) pair is one pair
of the Wilcoxon signed-rank test. The low-data regime is every main-study budget below
:data:`LOW_DATA` labelled slices (the abstract's "less than 100 annotated samples").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from medssl.analysis.numbers import slices
from medssl.analysis.powerlaw import PowerLawBootstrap
from medssl.analysis.stats import PairedTest, holm, main_study, paired_wilcoxon

ALPHA = 0.05
LOW_DATA = 100
VERDICTS = ("supported", "contradicted", "not shown", "cannot test")

SOURCE = "Kalapos & Gyires-Tóth 2022, abstract"
PREMISE = (
    "Self-supervised learning offers a way to lower the need for manually annotated data "
    "by pretraining models for a specific domain on unlabelled data."
)
HIERARCHICAL_CONVERGENCE = (
    "Self-supervised pretraining on natural images and target-domain-specific images leads "
    "to the fastest and most stable downstream convergence."
)
FOUR_TO_FIVE = (
    "This pretraining approach achieves 4-5 times faster fine-tuning convergence compared "
    "to an ImageNet pretrained model."
)
FIVE_EPOCHS = (
    "This approach requires less than five epochs of pretraining on domain-specific data "
    "to achieve such improvement in the downstream convergence time."
)
SUPERVISED_LOW_DATA = (
    "In low-data scenarios, supervised ImageNet pretraining achieves the best accuracy."
)
UNDER_100 = (
    "[Supervised ImageNet pretraining requires] less than 100 annotated samples to realise "
    "close to minimal error."
)
EXTENSION = "Not a claim of the study, tested here as well: "


@dataclass(frozen=True)
class Verdict:
    """One row of the claims table."""

    claim: str
    comparison: str
    evidence: str
    verdict: str


def pipeline_kind(name: str) -> str:
    """``random``, ``supervised-imagenet``, ``ssl-imagenet`` (generalists), ``hierarchical``
    (``BASE+METHOD-domain``) or ``specialist`` (``METHOD-domain``) for a pipeline name."""
    if name == "random":
        return "random"
    if "+" in name:
        return "hierarchical"
    if name in ("supervised-imagenet", "imagenet"):
        return "supervised-imagenet"
    if name.endswith("-imagenet"):
        return "ssl-imagenet"
    return "specialist"


def _of_kind(pipelines: Sequence[str], kind: str) -> list[str]:
    return sorted(p for p in pipelines if pipeline_kind(p) == kind)


def pooled_pairs(
    main: pd.DataFrame, a: str, b: str, metric: str, budgets: Sequence[float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Values of ``metric`` for pipelines ``a`` and ``b`` matched by (budget, seed), over
    ``budgets`` (all budgets when ``None``); unmatched runs are left out."""
    wide = _pair_table(main, a, b, metric, budgets)
    return wide[a].to_numpy(float), wide[b].to_numpy(float)


def _pair_table(
    main: pd.DataFrame, a: str, b: str, metric: str, budgets: Sequence[float] | None
) -> pd.DataFrame:
    """:func:`pooled_pairs` as a table: index (budget, seed), columns ``a`` and ``b``."""
    empty = pd.DataFrame(
        {a: [], b: []}, index=pd.MultiIndex.from_tuples([], names=["budget", "seed"])
    )
    sub = main if budgets is None else main[main["budget"].isin(list(budgets))]
    sub = sub[sub["pipeline"].isin([a, b])]
    if sub.empty or metric not in sub:
        return empty
    wide = sub.pivot_table(
        index=["budget", "seed"], columns="pipeline", values=metric, aggfunc="mean"
    )
    if a not in wide or b not in wide:
        return empty
    return wide[[a, b]].dropna()


def _budgets_text(budgets: Sequence[float]) -> str:
    return ", ".join(str(int(b)) for b in sorted(budgets))


@dataclass(frozen=True)
class _Test:
    """One pooled comparison ``a − b``: its matched values, test and Holm-adjusted p."""

    a: str
    b: str
    x: np.ndarray
    y: np.ndarray
    test: PairedTest
    p_holm: float
    budgets: tuple[float, ...]  # the budgets that gave pairs


def _tests(
    main: pd.DataFrame,
    pairs: Sequence[tuple[str, str]],
    metric: str,
    budgets: Sequence[float] | None,
) -> list[_Test]:
    """Pooled paired tests of ``a − b`` for each pair and their Holm-adjusted p-values."""
    values = []
    for a, b in pairs:
        wide = _pair_table(main, a, b, metric, budgets)
        x, y = wide[a].to_numpy(float), wide[b].to_numpy(float)
        paired_at = tuple(sorted(wide.index.get_level_values("budget").unique()))
        values.append((a, b, x, y, paired_wilcoxon(x, y), paired_at))
    adjusted = holm([v[4].p_value for v in values])
    return [
        _Test(a, b, x, y, t, float(p), at)
        for (a, b, x, y, t, at), p in zip(values, adjusted, strict=True)
    ]


def _direction(test: PairedTest, p_holm: float) -> str:
    """``supported`` (x > y), ``contradicted`` (x < y) or ``not shown``.

    The direction is the signed-rank test's own: the sign of T⁺ − T⁻ (the rank-biserial
    correlation), not of the median difference, which can disagree with it when many
    small differences go one way and a few large ones the other.
    """
    if not np.isfinite(p_holm) or p_holm >= ALPHA:
        return "not shown"
    return "supported" if test.rank_biserial > 0 else "contradicted"


def _evidence(t: _Test, what: str, considered: Sequence[float] | None = None) -> str:
    """``what`` and the test's figures; names the budgets that gave pairs when they are
    fewer than the ``considered`` ones, and when so few pairs cannot reach significance."""
    test, p_holm = t.test, t.p_holm
    pairs = f"{test.n_pairs} pairs"
    if considered is not None and t.budgets and set(t.budgets) != set(considered):
        pairs += f" (at budgets {_budgets_text(t.budgets)} only)"
    if not np.isfinite(test.p_value):
        return f"{what}: {pairs}, no test ({test.note})"
    return (
        f"{what}: {pairs}, median difference {test.median_diff:+.3f}, "
        f"rank-biserial r = {test.rank_biserial:+.2f}, p = {test.p_value:.3g} "
        f"(Holm: {p_holm:.3g})" + (f"; {test.note}" if test.note else "")
    )


def _cannot(claim: str, needs: str) -> Verdict:
    return Verdict(claim, "—", f"needs {needs}, which these results lack", "cannot test")


def _versus_each(
    claim: str,
    main: pd.DataFrame,
    subjects: Sequence[str],
    others: Sequence[str],
    metric: str,
    budgets: Sequence[float] | None,
    what: str,
) -> list[Verdict]:
    """One verdict per subject: supported when it beats every other pipeline, contradicted
    when any other beats it, else not shown (Holm over all the claim's comparisons)."""
    pairs = [(s, o) for s in subjects for o in others]
    tests = _tests(main, pairs, metric, budgets)
    considered = sorted(main["budget"].unique()) if budgets is None else list(budgets)
    rows = []
    for s in subjects:
        mine = [t for t in tests if t.a == s]
        calls = [_direction(t.test, t.p_holm) for t in mine]
        if calls and all(c == "supported" for c in calls):
            verdict = "supported"
        elif "contradicted" in calls:
            verdict = "contradicted"
        else:
            verdict = "not shown"
        evidence = "; ".join(_evidence(t, f"{s} − {t.b}, {what}", considered) for t in mine)
        rows.append(Verdict(claim, f"{s} vs {', '.join(others)}", evidence, verdict))
    return rows


def judge_claims(
    results: pd.DataFrame,
    metric: str = "paper_iou",
    *,
    fits: Mapping[str, PowerLawBootstrap] | None = None,
) -> pd.DataFrame:
    """Judge the study's claims against ``results`` (one row per fine-tune run).

    Args:
        results: the study's results table (``pipeline``, ``budget``, ``seed``,
            ``labelled_slices``, ``study``, ``curve_auc``, ``steps_to_95`` and ``metric``).
        metric: the accuracy compared (higher is better): the study's per-slice IoU.
        fits: power-law fits of the error per pipeline (for the "< 100 samples" claim).

    Returns:
        Columns ``claim``, ``comparison``, ``evidence``, ``verdict`` (one of
        :data:`VERDICTS`), one row per claim and compared pipeline.
    """
    main = main_study(results)
    names = sorted(main["pipeline"].unique()) if not main.empty else []
    specialists = _of_kind(names, "specialist")
    hierarchical = _of_kind(names, "hierarchical")
    supervised = _of_kind(names, "supervised-imagenet")
    slices = main.drop_duplicates("budget").set_index("budget")["labelled_slices"]
    low = [b for b, n in slices.items() if n < LOW_DATA]
    rows: list[Verdict] = []

    # the premise: domain-specific SSL lowers the need for labels (vs training from scratch)
    if not specialists or "random" not in names:
        rows.append(_cannot(PREMISE, "a specialist pipeline (METHOD-domain) and random init"))
    else:
        low_text = f"{metric}, slice budgets {_budgets_text(low)}"
        rows += _versus_each(PREMISE, main, specialists, ["random"], metric, low, low_text)
        auc = _versus_each(
            EXTENSION + "domain-specific pretraining speeds up downstream convergence.",
            main,
            specialists,
            ["random"],
            "curve_auc",
            None,
            "learning-curve AUC, all budgets",
        )
        rows += auc

    # the hierarchical pipelines' convergence
    others = [p for p in names if p not in hierarchical]
    if not hierarchical or not others:
        rows.append(
            _cannot(HIERARCHICAL_CONVERGENCE, "a hierarchical pipeline (BASE+METHOD-domain)")
        )
    else:
        rows += _versus_each(
            HIERARCHICAL_CONVERGENCE,
            main,
            hierarchical,
            others,
            "curve_auc",
            None,
            "learning-curve AUC, all budgets",
        )

    if not hierarchical or not supervised:
        rows.append(_cannot(FOUR_TO_FIVE, "a hierarchical pipeline and supervised-imagenet"))
    else:
        rows += _speedup(main, hierarchical, supervised[0])

    rows.append(_five_epochs(results))

    if not supervised:
        rows.append(_cannot(SUPERVISED_LOW_DATA, "supervised-imagenet"))
        rows.append(_cannot(UNDER_100, "supervised-imagenet"))
    else:
        rest = [p for p in names if p != supervised[0]]
        low_text = f"{metric}, slice budgets {_budgets_text(low)}"
        if rest:
            rows += _versus_each(SUPERVISED_LOW_DATA, main, supervised, rest, metric, low, low_text)
        rows.append(_under_100((fits or {}).get(supervised[0]), supervised[0]))
    return pd.DataFrame([vars(r) for r in rows], columns=list(Verdict.__dataclass_fields__))


def _speedup(main: pd.DataFrame, hierarchical: Sequence[str], supervised: str) -> list[Verdict]:
    """Steps to 95 % of the final validation IoU: hierarchical vs supervised ImageNet."""
    tests = _tests(main, [(supervised, h) for h in hierarchical], "steps_to_95", None)
    rows = []
    for t in tests:
        h, test, p, x, y = t.b, t.test, t.p_holm, t.x, t.y
        ratio = float(np.median(x) / np.median(y)) if len(x) and np.median(y) > 0 else np.nan
        faster = _direction(test, p)  # supervised − hierarchical > 0: hierarchical is faster
        if faster == "supported" and not ratio >= 4:
            faster = "not shown"
        evidence = _evidence(
            t, f"steps to 95 %, {supervised} − {h}, all budgets", sorted(main["budget"].unique())
        )
        rows.append(
            Verdict(
                FOUR_TO_FIVE,
                f"{h} vs {supervised}",
                f"{evidence}; ratio of medians {ratio:.2f}×",
                faster,
            )
        )
    return rows


def _five_epochs(results: pd.DataFrame) -> Verdict:
    """The pretraining-length sub-study: is the convergence of ≤ 5 domain epochs as good as
    that of the longest pretraining? One run per length: descriptive, no test."""
    length = results[results["study"] == "length"] if "study" in results else results.iloc[:0]
    length = length.dropna(subset=["pretrain_epoch", "curve_auc"]) if len(length) else length
    if length.empty or length["pretrain_epoch"].max() <= 5:
        return _cannot(FIVE_EPOCHS, "the pretraining-length sub-study beyond 5 epochs")
    by_epoch = length.groupby("pretrain_epoch")["curve_auc"].mean()
    early = by_epoch[by_epoch.index <= 5]
    longest = by_epoch.iloc[-1]
    best_early = float(early.max()) if len(early) else float("nan")
    ok = np.isfinite(best_early) and best_early >= longest - 0.01
    return Verdict(
        FIVE_EPOCHS,
        f"≤ 5 vs {int(by_epoch.index[-1])} pretraining epochs",
        f"learning-curve AUC, best of ≤ 5 epochs {best_early:.3f} vs {longest:.3f} after the "
        f"longest pretraining (one run per length: descriptive, within 0.01 counts as "
        f"reached)",
        "supported" if ok else "not shown",
    )


def _under_100(fit: PowerLawBootstrap | None, pipeline: str) -> Verdict:
    """The transition budget n* (where the fitted error reaches twice its floor) and its CI."""
    if fit is None:
        return Verdict(UNDER_100, pipeline, "no power-law fit of its error", "not shown")
    lo, hi = fit.ci(fit.transitions())
    n_star = fit.fit.transition(fit.fraction)
    evidence = f"transition n* (error at twice its fitted floor) {slices(n_star)} slices, "
    if np.isnan(lo) and np.isnan(hi):
        evidence += "no bootstrap interval (one run per budget)"
        return Verdict(UNDER_100, pipeline, evidence, "not shown")
    evidence += f"95 % CI {slices(lo)}–{slices(hi)}"
    if hi < LOW_DATA:
        verdict = "supported"
    elif lo >= LOW_DATA:
        verdict = "contradicted"
    else:
        verdict = "not shown"
    return Verdict(UNDER_100, pipeline, evidence, verdict)


def claims_display(table: pd.DataFrame) -> pd.DataFrame:
    """The table for reading: each claim's text on its first row only."""
    out = table.copy()
    out.loc[out["claim"].duplicated(), "claim"] = ""
    return out


def claims_summary(table: pd.DataFrame) -> str:
    """One sentence counting the verdicts of a :func:`judge_claims` table."""
    counts = table["verdict"].value_counts()
    parts = [f"{int(counts[v])} {v}" for v in VERDICTS if v in counts]
    return f"Verdicts over {len(table)} rows: {', '.join(parts)}." if parts else "No claims."
