"""The report's summary: what ran, how much of it converged, the best pipeline per budget
on equal seeds, and the estimated transition budgets with their caveat."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from medssl.analysis import quantities
from medssl.analysis.numbers import with_ci
from medssl.analysis.powerlaw import PowerLawBootstrap
from medssl.analysis.render import Section
from medssl.analysis.stats import (
    converged_flag,
    convergence_share,
    equal_seeds,
    main_study,
    unpaired_budgets,
)

#: Below this final validation IoU a run that meets the convergence rule is called out as
#: flat for want of learning (e.g. one labelled slice), not converged in the usual sense.
LOW_VAL_IOU = 0.1

#: medssl's companion to issue 15's convergence rule (analysis.curves.tail_rise).
RISING_TEXT = (
    "a least-squares line through the last 20 % of the validation curve gains at least "
    "0.01 IoU across it; medssl's companion to the rule, not part of it"
)


def summary_section(
    results: pd.DataFrame,
    curves: pd.DataFrame,
    fits: tuple[str, dict[str, PowerLawBootstrap]],
) -> Section:
    sec = Section("Summary")
    main = main_study(results)
    length = results[results["study"] == "length"] if "study" in results else results.iloc[:0]
    sec.p(
        f"{len(results)} fine-tune runs ({len(main)} in the main study, {len(length)} in the "
        f"pretraining-length study), {len(curves)} learning-curve points. Pipelines: "
        f"{', '.join(sorted(results['pipeline'].unique()))}. Budgets: "
        f"{', '.join(str(b) for b in sorted(main['budget'].unique()))} "
        f"({', '.join(sorted(main['budget_kind'].unique()))}); seeds per cell: "
        f"{_seed_range(main)}."
    )
    share = convergence_share(results, curves)
    if not share.empty and share["runs"].sum() > 0:
        done, runs = int(share["converged"].sum()), int(share["runs"].sum())
        text = (
            f"Converged (the last 20 % of the validation curve moved by less than 0.01 IoU): "
            f"{done} of {runs} runs ({100 * done / runs:.0f} %)."
        )
        low = _converged_low(results)
        if low:
            text += (
                f" {low} of them end below {LOW_VAL_IOU} validation IoU: flat because they "
                "learned little from their labels, not because training ran its course."
            )
        if "still rising" in share:
            rising = int(share["still rising"].sum())
            text += f" Still rising ({RISING_TEXT}): {rising} of {runs} runs."
            flat = runs - done - rising
            if flat > 0:
                text += (
                    f" The other {flat} that miss the rule move on a plateau (noisy "
                    "validations) or fall back."
                )
        sec.p(text)
    metric = None if main.empty else quantities.study_metric(main, what="report")
    if metric is not None:
        label = quantities.METRIC_LABELS.get(metric, metric)
        best = best_per_budget(main, metric)
        sec.table(
            best.rename(columns={"mean": f"mean {label}"}),
            f"Best pipeline per budget by mean {label}, over the seeds that every pipeline "
            "at that budget ran (the same labelled subsets; a partial study's pipelines can "
            "have different seeds), with its margin over the runner-up:",
        )
    error, per_pipeline = fits
    if per_pipeline:
        largest = largest_budgets(main)
        ts = "; ".join(
            f"{p}: {with_ci(t, *b.ci(b.transitions()), 0)}"
            + (" (beyond its largest budget)" if np.isfinite(t) and t > largest[p] else "")
            for p, b in per_pipeline.items()
            for t in [b.fit.transition(b.fraction)]
        )
        sec.p(
            f"Estimated transition budget n* ({error}, slices, 95 % CI): {ts}. "
            "The paper reports the transition at 30–75 labelled slices."
            + _floor_caveat(main, list(per_pipeline))
        )
    return sec


def largest_budgets(main: pd.DataFrame) -> dict[str, float]:
    """Each pipeline's largest budget in labelled slices (what its fit saw)."""
    return main.groupby("pipeline")["labelled_slices"].max().astype(float).to_dict()


def _converged_low(results: pd.DataFrame) -> int:
    """Runs that meet the convergence rule with a final validation IoU under
    :data:`LOW_VAL_IOU`."""
    if "final_val_iou" not in results or "converged" not in results:
        return 0
    flag = converged_flag(results["converged"])
    return int((flag & (results["final_val_iou"].astype(float) < LOW_VAL_IOU)).sum())


def _floor_caveat(main: pd.DataFrame, pipelines: Sequence[str]) -> str:
    """A caveat on n* when the fitted pipelines' runs at their own largest budget did not
    all converge: their error floor γ may then be the step budget's, not the data's, and a
    floor set too high puts n* too low."""
    if "converged" not in main or main.empty:
        return ""
    fitted = main[main["pipeline"].isin(pipelines)]
    own_top = fitted["pipeline"].map(largest_budgets(fitted))
    top = fitted[fitted["labelled_slices"] == own_top]
    known = top["converged"].notna()
    missed = int((~converged_flag(top["converged"]) & known).sum())
    if not missed:
        return ""
    return (
        f" At each fitted pipeline's largest budget, {missed} of {int(known.sum())} runs "
        "miss the convergence rule: an error floor γ set by the fixed number of steps "
        "rather than by the labels would put n* too low."
    )


def best_per_budget(main: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Best pipeline per budget by mean ``metric``, compared on equal terms.

    Each budget's pipelines are averaged over the seeds they all ran there (the same seed
    at the same budget draws the same labelled subset), so a pipeline with more seeds in a
    partial study is not compared on other subsets. Where the pipelines share no seed, each
    is averaged over its own seeds and ``seeds`` says ``unpaired``. ``margin`` is the lead
    over the runner-up (empty with one pipeline).
    """
    ran = main.dropna(subset=[metric])
    unpaired = set(unpaired_budgets(ran))
    rows = []
    for budget, group in equal_seeds(ran).groupby("budget", sort=True):
        means = group.groupby("pipeline")[metric].mean().sort_values(ascending=False)
        rows.append(
            {
                "budget": budget,
                "best pipeline": means.index[0],
                "mean": means.iloc[0],
                "margin": means.iloc[0] - means.iloc[1] if len(means) > 1 else np.nan,
                "pipelines": len(means),
                "seeds": "unpaired" if budget in unpaired else group["seed"].nunique(),
            }
        )
    return pd.DataFrame(
        rows, columns=["budget", "best pipeline", "mean", "margin", "pipelines", "seeds"]
    )


def _seed_range(main: pd.DataFrame) -> str:
    if main.empty:
        return "—"
    counts = main.groupby(["pipeline", "budget"])["seed"].nunique()
    lo, hi = int(counts.min()), int(counts.max())
    return str(lo) if lo == hi else f"{lo}–{hi}"
