"""The study report: ``report.md`` and a self-contained ``report.html`` with their figures.

:func:`write_report` turns the ``results`` and ``curves`` tables of a study into figures
(``figures/*.png|svg``), power-law fits, statistics tables and notes, laid out as a list of
sections (:class:`~medssl.analysis.render.Section`) that :mod:`medssl.analysis.render`
writes as Markdown and as self-contained HTML. The summary is
:mod:`medssl.analysis.summary`'s, the compute and weights provenance
:mod:`medssl.analysis.provenance`'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from medssl.analysis import figures as figs
from medssl.analysis import plotting, quantities, run_figures
from medssl.analysis.claims import (
    ALPHA,
    LOW_DATA,
    claims_display,
    claims_summary,
    judge_claims,
)
from medssl.analysis.numbers import slices as _slices
from medssl.analysis.numbers import with_ci
from medssl.analysis.powerlaw import ERRORS, PowerLawBootstrap, fit_pipelines, fits_table
from medssl.analysis.provenance import compute_text, pretraining_section, realisations_text
from medssl.analysis.render import Section, write_pages
from medssl.analysis.stats import (
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
from medssl.analysis.summary import RISING_TEXT, largest_budgets, summary_section
from medssl.artifacts.table import check_results, label_column, structure_names

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


def convergence_display(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`convergence_table` as ``median [q25, q75]`` strings."""
    out = pd.DataFrame({"pipeline": table["pipeline"], "runs": table["n_runs"]})
    out["steps to 95 % of final val IoU"] = [
        with_ci(m, lo, hi, 0)
        for m, lo, hi in zip(
            table["steps_to_95_median"],
            table["steps_to_95_q25"],
            table["steps_to_95_q75"],
            strict=True,
        )
    ]
    out["learning-curve AUC"] = [
        with_ci(m, lo, hi)
        for m, lo, hi in zip(table["auc_median"], table["auc_q25"], table["auc_q75"], strict=True)
    ]
    return out


def power_law_display(table: pd.DataFrame, max_budget: float | Mapping[str, float]) -> pd.DataFrame:
    """Fits table (:func:`fits_table`) as ``value [lo, hi]`` strings; flags an n* beyond
    the largest budget the pipeline was fitted on (``max_budget``: one for all, or per
    pipeline)."""
    rows = []
    for r in table.itertuples(index=False):
        t = with_ci(r.transition, r.transition_lo, r.transition_hi, 0)
        largest = (
            max_budget.get(r.pipeline, np.inf) if isinstance(max_budget, Mapping) else max_budget
        )
        if np.isfinite(r.transition) and r.transition > largest:
            t += " (beyond its largest budget)"
        rows.append(
            {
                "pipeline": r.pipeline,
                "α": with_ci(r.alpha, r.alpha_lo, r.alpha_hi),
                "β": with_ci(r.beta, r.beta_lo, r.beta_hi),
                "γ (irreducible)": with_ci(r.gamma, r.gamma_lo, r.gamma_hi),
                "transition n* (slices)": t,
                "runs": r.n_points,
                "bootstrap fits": f"{r.n_boot_ok}/{r.n_boot_ok + r.n_boot_failed}",
            }
        )
    return pd.DataFrame(rows)


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
    max_budget = largest_budgets(main_study(results))
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
    metric = quantities.study_metric(every, what="report") or "test_slice_iou_mean"
    label = quantities.METRIC_LABELS.get(metric, metric)
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
    metric = None if main.empty else quantities.study_metric(main, what="claims")
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
    colors = plotting.pipeline_colors(results["pipeline"])
    equal = equal_seeds(results)
    p5a = figs.plot_learning_curves(
        equal_seeds(curves, results), fig_dir / "fig5a_learning_curves", colors=colors
    )
    p5b = figs.plot_auc_violins(equal, fig_dir / "fig5b_auc", curves=curves, colors=colors)
    p6 = figs.plot_data_efficiency(
        results,
        fig_dir / "fig6_data_efficiency",
        metric=list(fig6_columns) or quantities.STUDY_METRIC,
        fits=fits,
        colors=colors,
    )
    p8 = figs.plot_pretraining_length(curves, fig_dir / "fig8_pretraining_length", results=results)
    p7 = run_figures.plot_overlays(
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
        (quantities.QUANTITIES[c][0] for c in fig6_columns if quantities.QUANTITIES[c][0] in fits),
        "1 − mean IoU",
    )
    sections = [
        summary_section(results, curves, (headline, fits.get(headline, {}))),
        curves_sec,
        auc,
        _efficiency(results, p6, fits, [quantities.QUANTITIES[c][0] for c in fig6_columns]),
        _length(results, p8),
        over,
        _statistics(results, equal, bool(left_out), reference),
        _claims(results, fits.get(headline, {})),
        _sub_studies(results, curves),
    ]
    return sections, [*p5a, *p5b, *p6, *p7, *p8]


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
        return write_pages(
            out, title, banner, [_notes(["No finished fine-tune runs.", *all_notes])], []
        )
    fits: dict[str, dict[str, PowerLawBootstrap]] = {}
    main = main_study(results)
    rngs = np.random.default_rng(seed).spawn(len(ERRORS) + len(quantities.FALLBACK))
    for (error, (col, _)), rng in zip(ERRORS.items(), rngs, strict=False):
        if col in main and main[col].notna().any():
            fits[error], skipped = fit_pipelines(main, error, rng=rng, n_boot=n_boot)
            all_notes += skipped
    fig6 = quantities.efficiency_columns(main, quantities.STUDY_METRIC) if not main.empty else []
    for column, rng in zip(fig6, rngs[len(ERRORS) :], strict=False):
        error = quantities.QUANTITIES[column][0]
        if error not in fits:
            fits[error], skipped = quantities.fit_metric(main, column, rng=rng, n_boot=n_boot)
            all_notes += skipped
    sections, fig_paths = _sections(
        results, curves, fig_dir, overlays, fits, reference, fig6_columns=fig6
    )
    pre, pre_paths = pretraining_section(pretraining, fig_dir)
    sections.insert(1, pre)
    compute = compute_text(results, pretraining)
    if compute:
        sections[0].p(compute)
    realisations = realisations_text(results, pretraining)
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
    return write_pages(out, title, banner, [*sections, _notes(all_notes)], fig_paths + pre_paths)


def _notes(notes: Sequence[str]) -> Section:
    sec = Section("Notes")
    for note in notes or ["None."]:
        sec.p(note)
    return sec
