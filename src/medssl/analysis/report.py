"""The study report: ``report.md`` and a self-contained ``report.html`` with their figures.

:func:`write_report` turns the ``results`` and ``curves`` tables of a study into figures
(``figures/*.png|svg``), power-law fits, statistics tables and notes, laid out as a list of
sections that two small renderers write as Markdown (figures linked) and HTML (tables as
HTML, figures inlined as base64 PNG so the file stands alone).
"""

from __future__ import annotations

import base64
import html
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import markdown
import numpy as np
import pandas as pd

from medssl.analysis import figures as figs
from medssl.analysis.claims import (
    ALPHA,
    LOW_DATA,
    claims_display,
    claims_summary,
    judge_claims,
)
from medssl.analysis.numbers import number as _number
from medssl.analysis.numbers import run_name
from medssl.analysis.numbers import slices as _slices
from medssl.analysis.powerlaw import ERRORS, PowerLawBootstrap, fit_pipelines, fits_table
from medssl.analysis.stats import (
    converged_flag,
    convergence_share,
    convergence_table,
    equal_seeds,
    format_mean_std,
    main_study,
    metrics_table,
    pairwise_tests,
    shared_cells,
    unpaired_budgets,
    with_curve_summaries,
)
from medssl.artifacts.table import check_results, label_column, structure_names

log = logging.getLogger(__name__)

#: Below this final validation IoU a run that meets the convergence rule is called out as
#: flat for want of learning (e.g. one labelled slice), not converged in the usual sense.
LOW_VAL_IOU = 0.1
#: medssl's companion to issue 15's convergence rule (analysis.curves.tail_rise).
RISING_TEXT = (
    "a least-squares line through the last 20 % of the validation curve gains at least "
    "0.01 IoU across it; medssl's companion to the rule, not part of it"
)
#: Caption suffix of the per-budget tables and figures computed on :func:`equal_seeds`.
EQUAL_SEEDS_TEXT = ", at each budget over the seeds every pipeline there ran"
BASELINES = ("random", "imagenet", "supervised-imagenet")
TRANSITION_TEXT = (
    "Transition n*: the budget at which the reducible error α·n^β of the fit ε(n) = α·n^β + γ "
    "has fallen to the irreducible error γ, i.e. where the power-law and floor asymptotes "
    "cross on log-log axes (ε(n*) = 2γ). Beyond it each doubling of the labels removes at "
    "most (1 − 2^β)/2 of the remaining error. Intervals are 95 % percentile bootstrap "
    "intervals over runs resampled within each budget; ∞ means the fitted floor is zero."
)


@dataclass
class Section:
    """A report section: an ordered list of blocks, each ``("p", str)``, ``("table", df)``
    or ``("fig", Path, caption)``."""

    title: str
    blocks: list[tuple] = field(default_factory=list)

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def markdown(self, text: str) -> None:
        """A block of Markdown written by a person (kept verbatim in ``report.md``)."""
        self.blocks.append(("md", text))

    def table(self, df: pd.DataFrame, caption: str = "") -> None:
        if caption:
            self.p(caption)
        self.blocks.append(("table", _display(df)))

    def figure(self, paths: Sequence[Path], caption: str, missing: str) -> None:
        png = [p for p in paths if p.suffix == ".png"]
        self.blocks.append(("fig", png[0], caption) if png else ("p", missing))


def _display(df: pd.DataFrame) -> pd.DataFrame:
    """Every cell as display text (floats to 3 significant digits, NaN as —)."""
    return df.astype(object).map(_number) if not df.empty else df


def _with_ci(v: float, lo: float, hi: float, digits: int = 3) -> str:
    """``"v [lo, hi]"``; ``digits=0`` formats budgets (see :func:`_slices`)."""
    fmt = _slices if digits == 0 else (lambda x: _number(x, digits))
    if not np.isfinite(v) or (np.isnan(lo) and np.isnan(hi)):  # no interval to show
        return fmt(v)
    return f"{fmt(v)} [{fmt(lo)}, {fmt(hi)}]"


def convergence_display(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`convergence_table` as ``median [q25, q75]`` strings."""
    out = pd.DataFrame({"pipeline": table["pipeline"], "runs": table["n_runs"]})
    out["steps to 95 % of final val IoU"] = [
        _with_ci(m, lo, hi, 0)
        for m, lo, hi in zip(
            table["steps_to_95_median"],
            table["steps_to_95_q25"],
            table["steps_to_95_q75"],
            strict=True,
        )
    ]
    out["learning-curve AUC"] = [
        _with_ci(m, lo, hi)
        for m, lo, hi in zip(table["auc_median"], table["auc_q25"], table["auc_q75"], strict=True)
    ]
    return out


def power_law_display(table: pd.DataFrame, max_budget: float | Mapping[str, float]) -> pd.DataFrame:
    """Fits table (:func:`fits_table`) as ``value [lo, hi]`` strings; flags an n* beyond
    the largest budget the pipeline was fitted on (``max_budget``: one for all, or per
    pipeline)."""
    rows = []
    for r in table.itertuples(index=False):
        t = _with_ci(r.transition, r.transition_lo, r.transition_hi, 0)
        largest = (
            max_budget.get(r.pipeline, np.inf) if isinstance(max_budget, Mapping) else max_budget
        )
        if np.isfinite(r.transition) and r.transition > largest:
            t += " (beyond its largest budget)"
        rows.append(
            {
                "pipeline": r.pipeline,
                "α": _with_ci(r.alpha, r.alpha_lo, r.alpha_hi),
                "β": _with_ci(r.beta, r.beta_lo, r.beta_hi),
                "γ (irreducible)": _with_ci(r.gamma, r.gamma_lo, r.gamma_hi),
                "transition n* (slices)": t,
                "runs": r.n_points,
                "bootstrap fits": f"{r.n_boot_ok}/{r.n_boot_ok + r.n_boot_failed}",
            }
        )
    return pd.DataFrame(rows)


def _summary(
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
    metric = None if main.empty else figs.study_metric(main, figs.STUDY_METRIC, "report")
    if metric is not None:
        label = figs.METRIC_LABELS.get(metric, metric)
        best = best_per_budget(main, metric)
        sec.table(
            best.rename(columns={"mean": f"mean {label}"}),
            f"Best pipeline per budget by mean {label}, over the seeds that every pipeline "
            "at that budget ran (the same labelled subsets; a partial study's pipelines can "
            "have different seeds), with its margin over the runner-up:",
        )
    error, per_pipeline = fits
    if per_pipeline:
        largest = _largest_budgets(main)
        ts = "; ".join(
            f"{p}: {_with_ci(t, *b.ci(b.transitions()), 0)}"
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


def _largest_budgets(main: pd.DataFrame) -> dict[str, float]:
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
    own_top = fitted["pipeline"].map(_largest_budgets(fitted))
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


def _convergence_summary(
    sec: Section,
    results: pd.DataFrame,
    curves: pd.DataFrame | None,
    reference: str | None = None,
) -> None:
    """Steps to 95 % and AUC per pipeline, pooled over the cells every pipeline ran, then
    the AUC's paired differences against the reference at every budget."""
    _auc_tests(sec, results, curves, reference)
    intro = (
        "Steps to 95 % of the final validation IoU and learning-curve AUC per pipeline: "
        "median [first, third quartile] over "
    )
    cells = shared_cells(main_study(results))
    if not cells.empty:
        budgets = ", ".join(str(b) for b in sorted(cells["budget"].unique()))
        n_cells = len(cells[["budget", "seed"]].drop_duplicates())
        sec.table(
            convergence_display(convergence_table(cells, curves)),
            intro + f"the main-study cells (budget, seed) that every pipeline ran "
            f"({n_cells} cells; budgets {budgets}), all budgets pooled.",
        )
        return
    conv = convergence_table(results, curves)
    if not conv.empty:
        sec.table(
            convergence_display(conv),
            intro + "all main-study runs, all budgets pooled. No (budget, seed) cell was "
            "run by every pipeline, so the pipelines' runs differ in budgets and seeds and "
            "are not comparable here.",
        )


def _auc_tests(
    sec: Section, results: pd.DataFrame, curves: pd.DataFrame | None, reference: str | None
) -> None:
    """Per-budget paired Wilcoxon tests of the learning-curve AUC against the reference
    (AUC grows with the labels, so pooled medians mostly rank the middle budget)."""
    main = with_curve_summaries(main_study(results), curves)
    names = set(main["pipeline"])
    ref = _reference(names, reference)
    if ref is None or len(names) < 2 or not main["curve_auc"].notna().any():
        return
    tests = pairwise_tests(main, "curve_auc", reference=ref)
    if tests.empty:
        return
    sec.table(
        tests,
        f"Learning-curve AUC against {ref} at every budget (AUC grows with the labels, so "
        "the pooled medians below mostly rank the middle budget; here each budget on its "
        "own): paired Wilcoxon signed-rank tests, pairs matched by seed, difference = "
        "pipeline_a − pipeline_b, p_holm over the table:",
    )


def _reference(names: set[str], reference: str | None) -> str | None:
    """The pipeline that paired tests compare against: the one given, else the first
    baseline of :data:`BASELINES` in the results, else none (all pairs)."""
    return reference or next((b for b in BASELINES if b in names), None)


def _seed_range(main: pd.DataFrame) -> str:
    if main.empty:
        return "—"
    counts = main.groupby(["pipeline", "budget"])["seed"].nunique()
    lo, hi = int(counts.min()), int(counts.max())
    return str(lo) if lo == hi else f"{lo}–{hi}"


def _efficiency(
    results: pd.DataFrame,
    paths: list[Path],
    fits: dict[str, dict[str, PowerLawBootstrap]],
    errors: Sequence[str] = (),
) -> Section:
    sec = Section("Data efficiency")
    sec.figure(
        paths,
        f"Figure 6. Test {', '.join(errors) or 'error'} vs labelled slices (log-log): "
        "boxes over seeds per pipeline, power-law fits with 95 % bootstrap bands, "
        "transition n* (diamonds with 95 % CI).",
        "No main-study test metrics: figure 6 skipped.",
    )
    sec.p(TRANSITION_TEXT)
    max_budget = _largest_budgets(main_study(results))
    for error, per_pipeline in fits.items():
        if per_pipeline:
            sec.table(
                power_law_display(fits_table(per_pipeline), max_budget),
                f"Power law ε(n) = α·n^β + γ for {error} (95 % CI):",
            )
    return sec


def _length(results: pd.DataFrame, paths: list[Path]) -> Section:
    sec = Section("Pretraining length")
    sec.figure(
        paths,
        "Figure 8. Fine-tuning curves per domain-pretraining epoch (mean ± s.d. "
        "over seeds) and the test metric against the epoch (one point per epoch).",
        "No pretraining-length study in the results: figure 8 skipped.",
    )
    length = results[results["study"] == "length"] if "study" in results else results.iloc[:0]
    if not length.empty:
        cols = [
            c
            for c in ("paper_iou", "test_slice_iou_mean", "test_dice_3d_mean")
            if c in length and length[c].notna().any()
        ]
        agg = length.groupby(["pipeline", "budget", "pretrain_epoch"])[cols].agg(["mean", "std"])
        agg.columns = [f"{c}_{s}" for c, s in agg.columns]
        sec.table(format_mean_std(agg.reset_index()), "Test metrics per pretraining epoch:")
    return sec


def _statistics(
    results: pd.DataFrame, equal: pd.DataFrame, left_out: bool, reference: str | None
) -> Section:
    """Per-budget tables on ``equal`` (:func:`equal_seeds` of ``results``; ``left_out``:
    it dropped runs) and the paired tests on every run."""
    sec = Section("Statistics")
    every = main_study(results)
    if every.empty:
        sec.p("No main-study runs.")
        return sec
    main = main_study(equal)
    if left_out:
        sec.p('The per-budget tables below leave out the runs listed under "Learning curves".')
    sec.table(
        format_mean_std(metrics_table(main)),
        f"Test metrics per budget and pipeline (mean ± s.d. over seeds{EQUAL_SEEDS_TEXT}):",
    )
    structures = structure_names(main.columns)
    if structures:
        per_label = metrics_table(main, [label_column("dice_3d", s) for s in structures])
        per_label.columns = [c.removeprefix(label_column("dice_3d", "")) for c in per_label.columns]
        sec.table(
            format_mean_std(per_label),
            "Test 3D Dice per structure of the dataset's label set, per budget and "
            f"pipeline (mean ± s.d. over seeds{EQUAL_SEEDS_TEXT}):",
        )
    _distance_tables(sec, main, structures)
    ref = _reference(set(main["pipeline"]), reference)
    metric = figs.study_metric(every, figs.STUDY_METRIC, "report") or "test_slice_iou_mean"
    label = figs.METRIC_LABELS.get(metric, metric)
    tests = pairwise_tests(every, metric, reference=ref)
    against = f"against {ref}" if ref else "between all pipeline pairs"
    if tests.empty:
        sec.p(
            f"No paired tests of {label} {against}: no budget has test results for "
            "both pipelines of a pair."
        )
        return sec
    sec.table(
        tests,
        f"Paired Wilcoxon signed-rank tests of {label} {against} at every "
        "budget (pairs matched by seed, difference = pipeline_a − pipeline_b; effect size: "
        "matched-pairs rank-biserial correlation; p_holm: Holm-adjusted over the table):",
    )
    return sec


def _left_out(every: pd.DataFrame, equal: pd.DataFrame) -> str:
    """What :func:`equal_seeds` left out of the per-budget tables and figures, or ''."""
    every = main_study(every)
    gone = every[~every["run_id"].isin(set(equal["run_id"]))]
    unpaired = unpaired_budgets(every)
    if gone.empty and not unpaired:
        return ""
    text = (
        "Per-budget tables and figures 5a/5b compare the pipelines at each budget on the "
        "seeds they all ran there (the same labelled subsets)."
    )
    if not gone.empty:
        cells = "; ".join(
            f"{p} at {_slices(float(b))}: seed{'s' if len(g) > 1 else ''} "
            + ", ".join(str(int(x)) for x in sorted(g))
            for (p, b), g in gone.groupby(["pipeline", "budget"], sort=True)["seed"]
        )
        text += (
            f" Left out of them, as runs of a seed not every pipeline at that budget has "
            f"yet: {len(gone)} run(s) ({cells}). They count in figure 6 and the power-law "
            "fits; the paired tests and claims pair runs by seed, so there they have no "
            "partner either."
        )
    if unpaired:
        text += (
            " At budget(s) " + ", ".join(_slices(float(b)) for b in unpaired) + " the "
            "pipelines share no seed yet: every run is shown there, unpaired."
        )
    return text


def _distance_tables(sec: Section, main: pd.DataFrame, structures: Sequence[str]) -> None:
    """HD95 per structure without and with the largest-component post-processing, and
    the clinical-index errors at the largest budget, when the results hold them."""
    raw = [label_column("hd95", s) for s in structures]
    pp = [label_column("pp_hd95", s) for s in structures]
    if structures and all(c in main for c in pp) and main[pp].notna().any().any():
        table = metrics_table(main, raw + pp)
        units = ", ".join(sorted(main["distance_units"].dropna().unique())) or "?"
        table.columns = [
            c.replace(label_column("pp_hd95", ""), "pp ").replace(label_column("hd95", ""), "")
            for c in table.columns
        ]
        sec.table(
            format_mean_std(table, digits=1),
            f"Test HD95 ({units}) per structure, mean over ED and ES, without and with "
            "('pp') the run's largest-component post-processing (mean ± s.d. over "
            f"seeds{EQUAL_SEEDS_TEXT}):",
        )
    clinical = [c for c in main.columns if c.startswith("clinical_mae_")]
    if clinical and main[clinical].notna().any().any():
        top = main[main["labelled_slices"] == main["labelled_slices"].max()]
        table = metrics_table(top, clinical)
        table.columns = [c.removeprefix("clinical_mae_") for c in table.columns]
        sec.table(
            format_mean_std(table, digits=1),
            "Clinical indices at the largest budget: mean absolute error against the "
            "reference segmentation's (EDV/ESV ml, EF %, myocardial mass g; mean ± s.d. "
            f"over seeds{EQUAL_SEEDS_TEXT}):",
        )


def _sub_studies(results: pd.DataFrame, curves: pd.DataFrame | None = None) -> Section:
    """One table per further budget family (``study`` other than main and length), and
    the convergence share of every cell."""
    sec = Section("Further budget families and convergence")
    subs = [s for s in results["study"].unique() if s not in ("main", "length")]
    for sub in sorted(subs):
        rows = results[results["study"] == sub]
        sec.table(
            format_mean_std(metrics_table(results, study=sub)),
            f"Sub-study `{sub}` ({', '.join(sorted(rows['budget_kind'].unique()))} budgets): "
            "test metrics per budget and pipeline (mean ± s.d. over seeds):",
        )
    share = convergence_share(results, curves)
    if share.empty:
        sec.p("No convergence flags in the results (collected before they existed).")
    else:
        sec.table(
            share,
            "Runs whose last 20 % of the validation curve moved by less than 0.01 IoU "
            "(converged, issue 15's rule), per sub-study, pipeline and budget"
            + (
                f"; still rising: {RISING_TEXT}; median rise: that line's gain, median "
                "over the cell's runs:"
                if "still rising" in share
                else ":"
            ),
        )
    return sec


def _claims(results: pd.DataFrame, fits: Mapping[str, PowerLawBootstrap]) -> Section:
    """The original study's claims, each with its verdict on these results."""
    sec = Section("Claims of the original study")
    main = main_study(results)
    metric = None if main.empty else figs.study_metric(main, figs.STUDY_METRIC, "claims")
    if metric is None:
        sec.p("No main-study test metrics: no claim can be judged.")
        return sec
    table = judge_claims(results, metric, fits=fits)
    sec.p(
        "Each claim of the study's abstract that a results table can speak to, judged on "
        "these results by a fixed rule (`medssl.analysis.claims`). Pipelines are compared "
        "run against run: the same seed at the same budget used the same labelled subset. "
        "A claim about a data regime pools the (budget, seed) pairs of all its budgets "
        f"(low data: budgets under {LOW_DATA} labelled slices) into one Wilcoxon "
        "signed-rank test, Holm-adjusted over the claim's comparisons. Supported or "
        f"contradicted: p < {ALPHA} in the claimed or the opposite direction; not shown: "
        "the pipelines ran but the test (or a size the claim states) did not get there; "
        "cannot test: names what is missing. " + claims_summary(table)
    )
    sec.table(claims_display(table), "The study's claims and their verdicts on these results:")
    return sec


def _sections(
    results: pd.DataFrame,
    curves: pd.DataFrame,
    fig_dir: Path,
    overlays: Sequence[Path] | Mapping[str, Sequence[Path]],
    fits: dict[str, dict[str, PowerLawBootstrap]],
    reference: str | None,
    fig6_columns: Sequence[str] = (),
) -> tuple[list[Section], list[Path]]:
    colors = figs.pipeline_colors(results["pipeline"])
    equal = equal_seeds(results)
    p5a = figs.plot_learning_curves(
        equal_seeds(curves, results), fig_dir / "fig5a_learning_curves", colors=colors
    )
    p5b = figs.plot_auc_violins(equal, fig_dir / "fig5b_auc", curves=curves, colors=colors)
    p6 = figs.plot_data_efficiency(
        results,
        fig_dir / "fig6_data_efficiency",
        metric=list(fig6_columns) or figs.STUDY_METRIC,
        fits=fits,
        colors=colors,
    )
    p8 = figs.plot_pretraining_length(curves, fig_dir / "fig8_pretraining_length", results=results)
    p7 = figs.plot_overlays(
        overlays if isinstance(overlays, Mapping) else list(overlays), fig_dir / "fig7_overlays"
    )
    curves_sec = Section("Learning curves")
    curves_sec.figure(
        p5a,
        "Figure 5a. Validation mean IoU during fine-tuning, mean ± s.d. over "
        f"seeds, one panel per label budget{EQUAL_SEEDS_TEXT}.",
        "No learning curves: figure 5a skipped.",
    )
    auc = Section("Area under the learning curves")
    auc.figure(
        p5b,
        "Figure 5b. Learning-curve AUC (mean validation IoU over training) per "
        f"pipeline, ordered by median (black bar){EQUAL_SEEDS_TEXT}.",
        "No AUC values: figure 5b skipped.",
    )
    _convergence_summary(auc, results, curves, reference)
    left_out = _left_out(results, equal)
    if left_out:
        curves_sec.p(left_out)
    over = Section("Example overlays")
    over.figure(
        p7,
        "Figure 7. Example predictions overlaid on test images"
        + (
            ", one column per pipeline, titled with the budget of the run it shows (a "
            "study report shows the largest budget and first seed that every pipeline "
            "ran, the same labels for all, or each pipeline's own largest while they "
            "share none)."
            if isinstance(overlays, Mapping)
            else "."
        ),
        "No overlay images given: figure 7 skipped.",
    )
    headline = next(
        (figs.QUANTITIES[c][0] for c in fig6_columns if figs.QUANTITIES[c][0] in fits),
        "1 − mean IoU",
    )
    sections = [
        _summary(results, curves, (headline, fits.get(headline, {}))),
        curves_sec,
        auc,
        _efficiency(results, p6, fits, [figs.QUANTITIES[c][0] for c in fig6_columns]),
        _length(results, p8),
        over,
        _statistics(results, equal, bool(left_out), reference),
        _claims(results, fits.get(headline, {})),
        _sub_studies(results, curves),
    ]
    return sections, [*p5a, *p5b, *p6, *p7, *p8]


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of ``df`` (cells as given, ``|`` escaped)."""

    def row(cells: Sequence[object]) -> str:
        return "| " + " | ".join(_md(str(c)).replace("|", "\\|") for c in cells) + " |"

    lines = [row(df.columns), row(["---"] * len(df.columns))]
    lines += [row(r) for r in df.itertuples(index=False)]
    return "\n".join(lines)


def _md(text: str) -> str:
    """Escape Markdown emphasis markers (``n*`` would otherwise start italics)."""
    return text.replace("*", "\\*")


def _markdown(title: str, banner: str, sections: list[Section], out: Path) -> str:
    parts = [f"# {title}", ""] + ([f"> **{banner}**", ""] if banner else [])
    for sec in sections:
        parts += [f"## {sec.title}", ""]
        for kind, *rest in sec.blocks:
            if kind == "p":
                parts += [_md(rest[0]), ""]
            elif kind == "md":
                parts += [rest[0].strip(), ""]
            elif kind == "table":
                parts += [markdown_table(rest[0]), ""]
            else:
                parts += [
                    f"![{_md(rest[1])}]({rest[0].relative_to(out).as_posix()})",
                    f"*{_md(rest[1])}*",
                    "",
                ]
    return "\n".join(parts)


CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;"
    "color:#222}table{border-collapse:collapse;font-size:0.85em;margin:0.5em 0 1.5em}"
    "th,td{border:1px solid #ccc;padding:3px 7px;text-align:left}th{background:#f2f2f2}"
    "img{max-width:100%}.banner{background:#b00020;color:#fff;font-weight:bold;"
    "padding:0.6em 1em;font-size:1.3em;letter-spacing:0.1em}figcaption{font-style:italic}"
)


def _html(title: str, banner: str, sections: list[Section]) -> str:
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{CSS}</style></head><body>"
    ]
    if banner:
        parts.append(f"<div class='banner'>{html.escape(banner)}</div>")
    parts.append(f"<h1>{html.escape(title)}</h1>")
    for sec in sections:
        parts.append(f"<h2>{html.escape(sec.title)}</h2>")
        for kind, *rest in sec.blocks:
            if kind == "p":
                parts.append(f"<p>{html.escape(rest[0])}</p>")
            elif kind == "md":
                parts.append(markdown.markdown(rest[0], extensions=["tables"]))
            elif kind == "table":
                parts.append(rest[0].to_html(index=False, border=0, escape=True))
            else:
                data = base64.b64encode(rest[0].read_bytes()).decode("ascii")
                parts.append(
                    f"<figure><img alt='{html.escape(rest[1])}' "
                    f"src='data:image/png;base64,{data}'><figcaption>"
                    f"{html.escape(rest[1])}</figcaption></figure>"
                )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(
    results: pd.DataFrame,
    curves: pd.DataFrame,
    out: Path,
    title: str,
    synthetic: bool,
    overlays: Sequence[Path] | Mapping[str, Sequence[Path]] = (),
    notes: Sequence[str] = (),
    *,
    n_boot: int = 200,
    seed: int = 0,
    reference: str | None = None,
    pretraining: pd.DataFrame | None = None,
    intro: str | None = None,
    settings: Sequence[tuple[str, pd.DataFrame]] = (),
) -> list[Path]:
    """Write ``report.md``, ``report.html`` and ``figures/*.png|svg`` into ``out``.

    Args:
        results: one row per fine-tune run (the study engine's ``results`` table).
        curves: learning curves in long format (the ``curves`` table).
        out: output folder (created).
        title: report title.
        synthetic: put a "SYNTHETIC DATA" banner at the top of both files.
        overlays: existing PNG images of example predictions (figure 7): a list, or a
            mapping pipeline → images for one panel column per pipeline.
        notes: extra notes for the last section (e.g. pipelines the study skipped and why).
        n_boot: bootstrap replicates per power-law fit.
        seed: seed of the bootstrap generator.
        reference: pipeline the paired tests compare against (default: the first of
            ``random``, ``imagenet``, ``supervised-imagenet`` present, else all pairs).
        pretraining: the pretraining runs' per-epoch losses (the study's
            ``pretraining`` table) for the pretraining-curves figure.
        intro: Markdown written by a person (what was run and why, what it shows), put
            first as "About this study".
        settings: ``(caption, table)`` pairs of what was run (e.g.
            :func:`medssl.experiments.settings.settings_tables`), a "Settings" section
            after the summary.

    Returns:
        The written paths: the two reports first, then the figures.
    """
    out = Path(out)
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    all_notes = list(notes)
    banner = "SYNTHETIC DATA — not results of real experiments" if synthetic else ""
    curves = pd.DataFrame() if curves is None else curves
    if not results.empty:
        check_results(results.columns, "results table")
    if results.empty:
        return _write(out, title, banner, [_notes(["No finished fine-tune runs.", *all_notes])], [])
    fits: dict[str, dict[str, PowerLawBootstrap]] = {}
    main = main_study(results)
    rngs = np.random.default_rng(seed).spawn(len(ERRORS) + len(figs.FALLBACK))
    for (error, (col, _)), rng in zip(ERRORS.items(), rngs, strict=False):
        if col in main and main[col].notna().any():
            fits[error], skipped = fit_pipelines(main, error, rng=rng, n_boot=n_boot)
            all_notes += skipped
    fig6 = figs.efficiency_columns(main, figs.STUDY_METRIC) if not main.empty else []
    for column, rng in zip(fig6, rngs[len(ERRORS) :], strict=False):
        error = figs.QUANTITIES[column][0]
        if error not in fits:
            fits[error], skipped = figs.fit_metric(main, column, rng=rng, n_boot=n_boot)
            all_notes += skipped
    sections, fig_paths = _sections(
        results, curves, fig_dir, overlays, fits, reference, fig6_columns=fig6
    )
    pre, pre_paths = _pretraining(pretraining, fig_dir)
    sections.insert(1, pre)
    compute = _compute_text(results, pretraining)
    if compute:
        sections[0].p(compute)
    realisations = _realisations_text(results, pretraining)
    if realisations:
        sections[0].p(realisations)
    if settings:
        what = Section("Settings")
        for caption, table in settings:
            what.table(table, caption)
        sections.insert(1, what)
    if intro:
        about = Section("About this study")
        about.markdown(intro)
        sections.insert(0, about)
    return _write(out, title, banner, [*sections, _notes(all_notes)], fig_paths + pre_paths)


def _compute_text(results: pd.DataFrame, pretraining: pd.DataFrame | None) -> str | None:
    """The measured wall time of the study's jobs (their ``DONE`` markers), or ``None``."""
    parts = []
    if "wall_s" in results:
        runs = results.drop_duplicates("run_id")["wall_s"].dropna()
        if len(runs):
            parts.append(
                f"{len(runs)} fine-tunes (training and evaluation) took {runs.sum() / 3600:.2f} h "
                f"(median {runs.median():.0f} s, range {runs.min():.0f}–{runs.max():.0f} s)"
            )
    if pretraining is not None and "wall_s" in pretraining and not pretraining.empty:
        pre = pretraining.drop_duplicates("run_id")["wall_s"].dropna()
        if len(pre):
            parts.append(f"{len(pre)} pretraining runs took {pre.sum() / 3600:.2f} h")
    if not parts:
        return None
    text = (
        "Measured compute (wall time of each job, from its DONE marker, summed over jobs: "
        "jobs that ran side by side count each, so this is job time, not elapsed time; only "
        "the finished jobs of the study's plan): " + "; ".join(parts)
    )
    devices = _devices(results, pretraining)
    return text + (f". Ran on: {devices}." if devices else ".")


def _devices(results: pd.DataFrame, pretraining: pd.DataFrame | None) -> str:
    """``device (N jobs)`` for every device the jobs' DONE markers name, most jobs first
    (jobs whose marker names none are counted as "not recorded" when others are named)."""
    jobs = [
        t.drop_duplicates("run_id")
        for t in (results, pretraining)
        if t is not None and not t.empty and "device" in t
    ]
    if not jobs:
        return ""
    device = pd.concat([j["device"] for j in jobs], ignore_index=True)
    if device.isna().all():
        return ""
    counts = device.fillna("not recorded").value_counts()
    return "; ".join(f"{name} ({n} job{'s' * (n != 1)})" for name, n in counts.items())


def _realisations_text(
    results: pd.DataFrame, pretraining: pd.DataFrame | None = None
) -> str | None:
    """Which pipelines' fine-tunes started from more than one pretraining run (told
    apart by ``init_fingerprint``), or ``None`` when every pipeline had one. Each
    fingerprint is named with the pretraining run whose weights it is, where the
    ``pretraining`` table knows it (``encoder_fingerprint``)."""
    if "init_fingerprint" not in results:
        return None
    runs = results.drop_duplicates("run_id")
    runs = runs[runs["init_fingerprint"].fillna("").astype(str) != ""]
    # a length study's per-epoch encoders differ by design: compare within one epoch
    epoch = runs["pretrain_epoch"] if "pretrain_epoch" in runs else pd.Series(np.nan, runs.index)
    runs = runs.assign(_what=[
        p if np.isnan(e) else f"{p} (encoder of epoch {e:g})"
        for p, e in zip(runs["pipeline"], epoch.astype(float), strict=True)
    ])  # fmt: skip
    owners: dict[str, list[str]] = {}
    if pretraining is not None and "encoder_fingerprint" in pretraining:
        for row in pretraining.drop_duplicates("run_id").itertuples():
            if isinstance(row.encoder_fingerprint, str) and row.encoder_fingerprint:
                name = run_name(row.run_id, bool(getattr(row, "superseded", False)))
                owners.setdefault(row.encoder_fingerprint, []).append(name)
    owner = {
        fp: ("pretraining run " if len(names) == 1 else "pretraining runs ") + ", ".join(names)
        for fp, names in owners.items()
    }  # a re-run that reproduced the same weights: both runs named
    parts = []
    for pipeline, group in runs.groupby("_what", sort=True):
        counts = group["init_fingerprint"].value_counts()
        if len(counts) > 1:
            listed = ", ".join(
                f"{fp} ({n} run{'s' * (n != 1)}" + (f"; {owner[fp]}" if fp in owner else "") + ")"
                for fp, n in counts.items()
            )
            parts.append(f"{pipeline}: {listed}")
    if not parts:
        return None
    return (
        "Fine-tunes of one pipeline started from different pretraining runs (weights are "
        "not committed, so a store continued on another machine re-runs its pretraining; "
        "the runs are told apart by the fingerprint of the weights they loaded): "
        + "; ".join(parts)
        + "."
    )


def _pretraining(pretraining: pd.DataFrame | None, fig_dir: Path) -> tuple[Section, list[Path]]:
    """The pretraining curves (figure P) and each run's first and last epoch loss."""
    sec = Section("Pretraining")
    paths = figs.plot_pretraining_curves(pretraining, fig_dir / "figP_pretraining_loss")
    sec.figure(
        paths,
        "Figure P. Pretraining loss per epoch (mean over the epoch's logged steps), one "
        "panel per domain-pretraining job (a job run again on another machine: one line "
        "per run, the superseded one dashed).",
        "No pretraining loss curves in the study folder: figure P skipped.",
    )
    curves = None if pretraining is None else pretraining[pretraining["loss"].notna()]
    if curves is not None and not curves.empty:
        rows = []
        # a job run twice (another machine): one row per run, named, in every row
        several = bool(curves.groupby("pipeline")["run_id"].nunique().gt(1).any())
        ordered = curves.sort_values("pipeline", kind="stable")  # runs in collect's order
        for (pipeline, _), sub in ordered.groupby(["pipeline", "run_id"], sort=False):
            sub = sub.sort_values("epoch")
            tail = sub["loss"].iloc[-max(2, -(-len(sub) // 5)) :]  # ≥ 2 epochs
            rows.append(
                {
                    "pipeline": pipeline,
                    **({"run": _run_label(sub)} if several else {}),
                    "method": sub["method"].iloc[0],
                    "epochs": len(sub),
                    "steps": int(sub["steps"].max()),
                    "first-epoch loss": sub["loss"].iloc[0],
                    "last-epoch loss": sub["loss"].iloc[-1],
                    "last 20 % range / first-to-last drop": (tail.max() - tail.min())
                    / max(abs(sub["loss"].iloc[0] - sub["loss"].iloc[-1]), 1e-12),
                    "collapse flagged": bool(sub["collapsed"].astype(bool).any()),
                }
            )
        sec.table(
            pd.DataFrame(rows),
            "Each pretraining run: loss at its first and last epoch, and how much the loss "
            "still moved over the last 20 % of its epochs relative to its whole drop (small: "
            "flattened):",
        )
    return sec, list(paths)


def _run_label(sub: pd.DataFrame) -> str:
    """A pretraining run's id, marked when superseded, with its encoder fingerprint."""
    first = sub.iloc[0]
    label = run_name(first["run_id"], bool(first.get("superseded", False)))
    fp = first.get("encoder_fingerprint")
    return label + (f", weights {fp}" if isinstance(fp, str) and fp else "")


def _notes(notes: Sequence[str]) -> Section:
    sec = Section("Notes")
    for note in notes or ["None."]:
        sec.p(note)
    return sec


def _write(
    out: Path, title: str, banner: str, sections: list[Section], fig_paths: list[Path]
) -> list[Path]:
    md, page = out / "report.md", out / "report.html"
    md.write_text(_markdown(title, banner, sections, out), encoding="utf-8")
    page.write_text(_html(title, banner, sections), encoding="utf-8")
    log.info("report written to %s (%d figures)", out, len(fig_paths))
    return [md, page, *fig_paths]
