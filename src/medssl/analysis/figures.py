"""Study figures (numbered as in Kalapos & Gyires-Tóth, ECCV-W 2022), PNG + SVG: the
learning curves (5a), their AUC (5b), data efficiency (6) and pretraining length (8);
the run images (7) and pretraining curves are in :mod:`medssl.analysis.run_figures`.

Every ``plot_*`` function takes the study tables and an output path stem (``figures/fig6``),
writes ``<stem>.png`` and ``<stem>.svg`` and returns the written paths as a
:class:`~medssl.analysis.plotting.Plotted` list whose ``figure`` attribute is the drawn
:class:`~matplotlib.figure.Figure` (for tests and further editing); when its data are
missing it logs why and returns an empty list.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, LogLocator, NullFormatter, ScalarFormatter

from medssl.analysis import plotting
from medssl.analysis.powerlaw import PowerLawBootstrap
from medssl.analysis.quantities import (
    METRIC_LABELS,
    QUANTITIES,
    STUDY_METRIC,
    efficiency_columns,
    error_of,
    fit_metric,
    study_metric,
)
from medssl.analysis.stats import main_study, with_curve_summaries

log = logging.getLogger(__name__)


def mean_curve(runs: pd.DataFrame, value: str = "val_iou") -> pd.DataFrame:
    """Mean ± std over runs of a curve, on the union of their steps.

    Each run is linearly interpolated onto the union grid inside its own step range, so runs
    evaluated at different steps still average. Returns columns ``step, mean, std, n``.
    """
    grid = np.unique(runs["step"].to_numpy(float))
    stack = []
    for _, run in runs.groupby("run_id", sort=False):
        run = run.sort_values("step")
        s, v = run["step"].to_numpy(float), run[value].to_numpy(float)
        stack.append(np.where((grid >= s[0]) & (grid <= s[-1]), np.interp(grid, s, v), np.nan))
    arr = np.vstack(stack)
    n = np.sum(np.isfinite(arr), axis=0)
    mean = np.nanmean(arr, axis=0)
    std = np.nanstd(arr, axis=0, ddof=1) if arr.shape[0] > 1 else np.zeros_like(mean)
    return pd.DataFrame({"step": grid, "mean": mean, "std": np.nan_to_num(std), "n": n})


def _curve_panel(ax: Axes, sub: pd.DataFrame, key: str, colors: plotting.Colors) -> None:
    for name, runs in sub.groupby(key, sort=True):
        c = mean_curve(runs)
        color = colors[name] if isinstance(colors, Mapping) else colors(name)
        ax.plot(c["step"], c["mean"], color=color, lw=1.2)
        ax.fill_between(
            c["step"], c["mean"] - c["std"], c["mean"] + c["std"], color=color, alpha=0.18, lw=0
        )


@plotting.styled
def plot_learning_curves(
    curves: pd.DataFrame,
    stem: Path,
    *,
    budgets: Sequence[int] | None = None,
    colors: plotting.Colors | None = None,
    ncols: int = 5,
) -> list[Path]:
    """Fig. 5a: validation mean IoU vs fine-tuning step, mean ± std over seeds per pipeline.

    One panel per label budget of the main study (or per budget in ``budgets``).
    """
    df = main_study(curves)
    if budgets is not None:
        df = df[df["budget"].isin(budgets)]
    if df.empty:
        log.info("figure 5a skipped: no main-study learning curves")
        return plotting.Plotted()
    colors = colors or plotting.pipeline_colors(df["pipeline"])
    groups = list(df.groupby("budget", sort=True))
    fig, axes = plotting.grid(len(groups), ncols, (2.6, 2.1))
    for ax, (budget, sub) in zip(axes, groups, strict=True):
        _curve_panel(ax, sub, "pipeline", colors)
        ax.set_title(f"{budget} labelled slices" if budget != 1 else "1 labelled slice")
        ax.set_xlabel("fine-tuning step")
        ax.set_ylabel("validation mean IoU")
    plotting.legend(
        fig,
        {p: colors[p] for p in sorted(df["pipeline"].unique())},
        [Patch(color="grey", alpha=0.3, label="± 1 s.d. over seeds")],
    )
    return plotting.save(fig, stem)


def _violin_panel(
    ax: Axes, sub: pd.DataFrame, colors: plotting.Colors, rng: np.random.Generator
) -> None:
    groups = {p: g["curve_auc"].dropna().to_numpy(float) for p, g in sub.groupby("pipeline")}
    groups = {p: v for p, v in groups.items() if v.size}
    order = sorted(groups, key=lambda p: -np.median(groups[p]))
    for i, name in enumerate(order):
        v = groups[name]
        if np.unique(v).size > 1:
            body = ax.violinplot(v, positions=[i], widths=0.8, showextrema=False)["bodies"][0]
            body.set(facecolor=colors[name], edgecolor=colors[name], alpha=0.35)
        ax.scatter(i + rng.uniform(-0.12, 0.12, v.size), v, s=8, color=colors[name], zorder=3)
        ax.hlines(np.median(v), i - 0.3, i + 0.3, color="black", lw=1.2, zorder=4)
    ax.set_xticks(range(len(order)), order, rotation=40, ha="right")
    ax.grid(axis="x", visible=False)


@plotting.styled
def plot_auc_violins(
    results: pd.DataFrame,
    stem: Path,
    *,
    curves: pd.DataFrame | None = None,
    budgets: Sequence[int] | None = None,
    colors: plotting.Colors | None = None,
    ncols: int = 5,
) -> list[Path]:
    """Fig. 5b: learning-curve AUC (mean validation IoU over training) per pipeline.

    Violins over seeds, one panel per budget, pipelines ordered by descending median (black
    bar); single runs are drawn as points. NaN AUCs are filled from ``curves`` when given.
    """
    df = with_curve_summaries(main_study(results), curves)
    if budgets is not None:
        df = df[df["budget"].isin(budgets)]
    df = df[np.isfinite(df["curve_auc"].astype(float))]
    if df.empty:
        log.info("figure 5b skipped: no learning-curve AUCs")
        return plotting.Plotted()
    colors = colors or plotting.pipeline_colors(df["pipeline"])
    groups = list(df.groupby("budget", sort=True))
    k = df["pipeline"].nunique()
    fig, axes = plotting.grid(len(groups), ncols, (0.35 * k + 1.0, 2.4))
    rng = np.random.default_rng(0)  # jitter only
    for ax, (budget, sub) in zip(axes, groups, strict=True):
        _violin_panel(ax, sub, colors, rng)
        ax.set_title(f"{budget} labelled slice{'s' if budget != 1 else ''}")
        ax.set_ylabel("AUC of validation mean IoU")
    return plotting.save(fig, stem)


def _dodge(budget_x: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """Offsets (in log10 units) of k boxes around each budget, and each box's width."""
    gaps = np.diff(np.sort(budget_x))
    span = 0.8 * (gaps.min() if gaps.size else 0.3)
    slot = span / k
    return (np.arange(k) - (k - 1) / 2) * slot, 0.8 * slot


def _fit_overlay(
    ax: Axes,
    boot: PowerLawBootstrap,
    color: Any,
    x_range: tuple[float, float],
    data_range: tuple[float, float] | None = None,
) -> None:
    """Fitted curve, its bootstrap band and the transition n* with its CI; the curve is
    solid over the pipeline's own budgets (``data_range``, log10) and dashed where it
    extrapolates."""
    grid = np.logspace(*x_range, 200)
    x, y = np.log10(grid), boot.fit.predict(grid)
    lo_d, hi_d = data_range or x_range
    inside = (x >= lo_d - 1e-9) & (x <= hi_d + 1e-9)
    line = ax.plot(np.where(inside, x, np.nan), y, color=color, lw=1.3)[0]
    line.set_gid("fit")
    for part in (x <= lo_d, x >= hi_d):  # extrapolation on either side
        if part.sum() > 1:
            extra = ax.plot(x[part], y[part], color=color, lw=0.9, ls="--", alpha=0.8)[0]
            extra.set_gid("fit-extrapolated")
    if boot.samples.shape[0] >= 10:
        lo, hi = boot.band(grid)
        ax.fill_between(np.log10(grid), lo, hi, color=color, alpha=0.15, lw=0)
    t = boot.fit.transition(boot.fraction)
    if not (np.isfinite(t) and x_range[0] <= np.log10(t) <= x_range[1]):
        return
    t_lo, t_hi = boot.ci(boot.transitions())
    y = float(boot.fit.predict(np.array([t]))[0])
    if not (np.isnan(t_lo) and np.isnan(t_hi)):  # no bootstrap: the point alone
        lo_x = np.log10(max(t_lo, 10 ** x_range[0])) if np.isfinite(t_lo) else np.log10(t)
        hi_x = np.log10(min(t_hi, 10 ** x_range[1])) if np.isfinite(t_hi) else x_range[1]
        ci = ax.plot([lo_x, hi_x], [y, y], color=color, lw=1.0, marker="|", ms=5, zorder=5)[0]
        ci.set_gid("transition-ci")
    ax.plot(np.log10(t), y, "D", ms=4.5, color=color, mec="black", mew=0.6, zorder=6)


def _efficiency_panel(
    ax: Axes,
    df: pd.DataFrame,
    column: str,
    colors: plotting.Colors,
    fits: Mapping[str, PowerLawBootstrap],
) -> None:
    error = QUANTITIES[column][0]
    df = df.assign(_err=error_of(df, column), _x=np.log10(df["labelled_slices"]))
    df = df[np.isfinite(df["_err"]) & (df["_err"] > 0)]
    budget_x = df.groupby("budget")["_x"].median()
    names = sorted(df["pipeline"].unique())
    offsets, width = _dodge(budget_x.to_numpy(), len(names))
    for off, name in zip(offsets, names, strict=True):
        sub = df[df["pipeline"] == name]
        data = [g["_err"].to_numpy() for _, g in sub.groupby("budget", sort=True)]
        pos = budget_x.loc[sorted(sub["budget"].unique())].to_numpy() + off
        parts = ax.boxplot(
            data,
            positions=pos,
            widths=width,
            patch_artist=True,
            manage_ticks=False,
            boxprops={"facecolor": colors[name], "alpha": 0.55, "lw": 0.6},
            medianprops={"color": "black", "lw": 0.8},
            whiskerprops={"lw": 0.6},
            capprops={"lw": 0.6},
            flierprops={"ms": 2, "mec": colors[name]},
        )
        for box in parts["boxes"]:
            box.set_gid(f"box:{name}")
        # each run as a point in the pipeline's colour: a box of one run is only a line
        xs = np.concatenate([np.full(len(d), x) for d, x in zip(data, pos, strict=True)])
        pts = ax.scatter(
            xs,
            np.concatenate(data),
            s=7,
            color=colors[name],
            edgecolors="black",
            linewidths=0.3,
            zorder=4,
        )
        pts.set_gid(f"runs:{name}")
    # wide enough for every dodged box (9 pipelines at 2 budgets reach ±0.4 decades)
    pad = max(0.25, float(np.abs(offsets).max() + width))
    x_range = (budget_x.min() - pad, budget_x.max() + pad)
    for name in names:
        if name in fits:
            own = df.loc[df["pipeline"] == name, "_x"]
            _fit_overlay(ax, fits[name], colors[name], x_range, (own.min(), own.max()))
    ticks = sorted(df.groupby("budget")["labelled_slices"].median().round().astype(int))
    ax.xaxis.set_major_locator(FixedLocator(np.log10(ticks)))
    ax.set_xticklabels([str(t) for t in ticks], rotation=45 if len(ticks) > 6 else 0)
    ax.set_xlim(*x_range)
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set(title=error, xlabel="labelled slices (log scale)", ylabel=f"test {error} (log scale)")


@plotting.styled
def plot_data_efficiency(
    results: pd.DataFrame,
    stem: Path,
    *,
    metric: str | Sequence[str] = STUDY_METRIC,
    fits: Mapping[str, Mapping[str, PowerLawBootstrap]] | None = None,
    colors: plotting.Colors | None = None,
    n_boot: int = 200,
    seed: int = 0,
) -> plotting.Plotted:
    """Fig. 6: test error vs labelled slices, log-log, boxes over seeds per pipeline (dodged).

    One panel per metric (see :func:`~medssl.analysis.quantities.efficiency_columns`;
    default the study metric ``paper_iou``, plotted as 1 − IoU, falling back to
    ``test_slice_iou_mean`` for results without it; ``"all"``: 1 − mean IoU, Jaccard loss,
    1 − 3D Dice and the study's two) with the power-law fit of every pipeline, its
    pointwise 95 % bootstrap band and the transition n* (diamond, horizontal bar: its
    bootstrap CI). ``fits`` maps error name (the panel title,
    :data:`~medssl.analysis.quantities.QUANTITIES`) → pipeline → fit; missing ones are
    fitted here with ``n_boot``
    replicates from ``np.random.default_rng(seed)``.
    """
    df = main_study(results)
    columns = efficiency_columns(df, metric) if not df.empty else []
    if not columns:
        log.info("figure 6 skipped: no main-study test metrics")
        return plotting.Plotted()
    colors = colors or plotting.pipeline_colors(df["pipeline"])
    fits = dict(fits or {})
    rng = np.random.default_rng(seed)
    k = df["pipeline"].nunique()  # many pipelines: one wide row each
    if len(columns) == 1:
        layout = (1, (max(4.2, 0.09 * k * df["budget"].nunique() + 2.0), 3.4))
    else:
        layout = (3, (3.6, 3.1)) if k <= 4 else (1, (1.4 * k, 3.2))
    fig, axes = plotting.grid(len(columns), *layout)
    for ax, column in zip(axes, columns, strict=True):
        error = QUANTITIES[column][0]
        if error not in fits:
            fits[error] = fit_metric(df, column, rng=rng, n_boot=n_boot)[0]
        _efficiency_panel(ax, df, column, colors, fits[error])
    law = r"power law $\alpha n^{\beta} + \gamma$ (95 % band)"
    extra = [
        Line2D([], [], color="grey", lw=1.3, label=law),
        Line2D([], [], color="grey", lw=0.9, ls="--", label="extrapolated beyond its budgets"),
        Line2D(
            [],
            [],
            color="grey",
            marker="D",
            mec="black",
            ls="-",
            lw=1.0,
            label="transition n* (95 % CI)",
        ),
    ]
    plotting.legend(fig, {p: colors[p] for p in sorted(df["pipeline"].unique())}, extra)
    return plotting.save(fig, stem)


def _length_runs(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of the pretraining-length study with a known pretraining epoch."""
    if not {"study", "pretrain_epoch"} <= set(df.columns):
        return df.iloc[:0]
    df = df[df["study"] == "length"]
    return df[np.isfinite(df["pretrain_epoch"].astype(float))]


@plotting.styled
def plot_pretraining_length(
    curves: pd.DataFrame,
    stem: Path,
    *,
    results: pd.DataFrame | None = None,
    metric: str = STUDY_METRIC,
) -> plotting.Plotted:
    """Fig. 8: downstream performance against the domain-pretraining epoch.

    With ``results``, a panel of the test ``metric`` (default the study metric
    ``paper_iou``, falling back to ``test_slice_iou_mean`` with a warning) against the
    pretraining epoch: one point per epoch (mean over seeds, bar: s.d.) and pipeline, on a
    symmetric-log axis when the epochs reach beyond 50. Before it, one panel of fine-tuning
    curves per (pipeline, budget) of the ``length`` study, coloured by epoch (mean ± s.d.
    over seeds).
    """
    df = _length_runs(curves if curves is not None else pd.DataFrame())
    res = _length_runs(results) if results is not None else pd.DataFrame()
    column = None if res.empty else study_metric(res, metric, "figure 8")
    if df.empty and column is None:
        log.info("figure 8 skipped: no pretraining-length study in the curves or results")
        return plotting.Plotted()
    seen = [t["pretrain_epoch"].to_numpy(float) for t in (df, res) if not t.empty]
    epochs = np.unique(np.concatenate(seen))
    norm = mpl.colors.Normalize(epochs.min(), max(epochs.max(), epochs.min() + 1e-9))
    cmap = mpl.colormaps["viridis"]
    groups = list(df.groupby(["pipeline", "budget"], sort=True)) if not df.empty else []
    extra = int(column is not None)
    fig, axes = plotting.grid(len(groups) + extra, 3, (3.0, 2.4))
    for ax, ((pipeline, budget), sub) in zip(axes, groups, strict=False):
        _curve_panel(ax, sub, "pretrain_epoch", lambda e: cmap(norm(e)))
        ax.set(
            title=f"{pipeline}, {budget} labelled slices",
            xlabel="fine-tuning step",
            ylabel="validation mean IoU",
        )
    if column is not None:
        ax = axes[-1]
        label = METRIC_LABELS.get(column, column)
        for pipeline, sub in res.groupby("pipeline"):
            agg = sub.groupby("pretrain_epoch")[column].agg(["mean", "std"]).sort_index()
            bars = ax.errorbar(
                agg.index.to_numpy(float),
                agg["mean"].to_numpy(float),
                yerr=agg["std"].fillna(0).to_numpy(float),
                marker="o",
                ms=3,
                capsize=2,
                lw=1,
                label=pipeline,
            )
            bars.lines[0].set_gid(f"epochs:{pipeline}")  # the points, one per epoch
        if epochs.max() > 50:
            ax.set_xscale("symlog", linthresh=10, linscale=1.0)
        ax.set(title=label, xlabel="pretraining epoch", ylabel=label)
        ax.legend(frameon=False)
    if groups:
        fig.colorbar(
            mpl.cm.ScalarMappable(norm=norm, cmap=cmap),
            ax=axes[: len(groups)],
            label="pretraining epoch",
            shrink=0.9,
        )
    return plotting.save(fig, stem)
