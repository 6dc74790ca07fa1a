"""Study figures (numbered as in Kalapos & Gyires-Tóth, ECCV-W 2022), PNG + SVG.

Every ``plot_*`` function takes the study tables and an output path stem (``figures/fig6``),
writes ``<stem>.png`` and ``<stem>.svg`` and returns the written paths; when its data are
missing it logs why and returns ``[]``. Figures are built on :class:`matplotlib.figure.Figure`
with the Agg canvas, never through ``pyplot``, so no global figure state or backend is touched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import wraps
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.image as mpimg
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, LogLocator, NullFormatter, ScalarFormatter

from medssl.analysis.powerlaw import ERRORS, PowerLawBootstrap, error_values, fit_pipelines
from medssl.analysis.stats import main_study, with_curve_summaries

log = logging.getLogger(__name__)

Colors = Mapping[str, Any]
STYLE = {
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "legend.fontsize": 7.5,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "grid.linewidth": 0.5,
    "svg.hashsalt": "medssl",
    "figure.dpi": 100,
}


def _styled(fn: Callable[..., list[Path]]) -> Callable[..., list[Path]]:
    """Run a plotting function inside the figure style (restored afterwards)."""

    @wraps(fn)
    def run(*args: Any, **kwargs: Any) -> list[Path]:
        with mpl.rc_context(STYLE):
            return fn(*args, **kwargs)

    return run


def pipeline_colors(pipelines: Iterable[str]) -> dict[str, Any]:
    """A fixed colour per pipeline (sorted names; tab10, tab20 beyond ten)."""
    names = sorted(set(pipelines))
    cmap = mpl.colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def _save(fig: Figure, stem: Path) -> list[Path]:
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=200, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight", metadata={"Date": None})
    return paths


def _grid(n: int, ncols: int, panel: tuple[float, float]) -> tuple[Figure, list[Axes]]:
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig = Figure(figsize=(panel[0] * ncols, panel[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, list(axes[:n])


def _legend(fig: Figure, colors: Colors, extra: Sequence[Any] = ()) -> None:
    handles = [Patch(color=c, label=p) for p, c in colors.items()] + list(extra)
    fig.legend(
        handles=handles, loc="outside lower center", ncols=min(len(handles), 5), frameon=False
    )


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


def _curve_panel(ax: Axes, sub: pd.DataFrame, key: str, colors: Colors) -> None:
    for name, runs in sub.groupby(key, sort=True):
        c = mean_curve(runs)
        color = colors[name] if isinstance(colors, Mapping) else colors(name)
        ax.plot(c["step"], c["mean"], color=color, lw=1.2)
        ax.fill_between(
            c["step"], c["mean"] - c["std"], c["mean"] + c["std"], color=color, alpha=0.18, lw=0
        )


@_styled
def plot_learning_curves(
    curves: pd.DataFrame,
    stem: Path,
    *,
    budgets: Sequence[int] | None = None,
    colors: Colors | None = None,
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
        return []
    colors = colors or pipeline_colors(df["pipeline"])
    groups = list(df.groupby("budget", sort=True))
    fig, axes = _grid(len(groups), ncols, (2.6, 2.1))
    for ax, (budget, sub) in zip(axes, groups, strict=True):
        _curve_panel(ax, sub, "pipeline", colors)
        ax.set_title(f"{budget} labelled slices" if budget != 1 else "1 labelled slice")
        ax.set_xlabel("fine-tuning step")
        ax.set_ylabel("validation mean IoU")
    _legend(
        fig,
        {p: colors[p] for p in sorted(df["pipeline"].unique())},
        [Patch(color="grey", alpha=0.3, label="± 1 s.d. over seeds")],
    )
    return _save(fig, stem)


def _violin_panel(ax: Axes, sub: pd.DataFrame, colors: Colors, rng: np.random.Generator) -> None:
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


@_styled
def plot_auc_violins(
    results: pd.DataFrame,
    stem: Path,
    *,
    curves: pd.DataFrame | None = None,
    budgets: Sequence[int] | None = None,
    colors: Colors | None = None,
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
        return []
    colors = colors or pipeline_colors(df["pipeline"])
    groups = list(df.groupby("budget", sort=True))
    k = df["pipeline"].nunique()
    fig, axes = _grid(len(groups), ncols, (0.35 * k + 1.0, 2.4))
    rng = np.random.default_rng(0)  # jitter only
    for ax, (budget, sub) in zip(axes, groups, strict=True):
        _violin_panel(ax, sub, colors, rng)
        ax.set_title(f"{budget} labelled slice{'s' if budget != 1 else ''}")
        ax.set_ylabel("AUC of validation mean IoU")
    return _save(fig, stem)


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
) -> None:
    """Fitted curve, its bootstrap band and the transition n* with its CI."""
    grid = np.logspace(*x_range, 200)
    ax.plot(np.log10(grid), boot.fit.predict(grid), color=color, lw=1.3)
    if boot.samples.shape[0] >= 10:
        lo, hi = boot.band(grid)
        ax.fill_between(np.log10(grid), lo, hi, color=color, alpha=0.15, lw=0)
    t = boot.fit.transition(boot.fraction)
    if not (np.isfinite(t) and x_range[0] <= np.log10(t) <= x_range[1]):
        return
    t_lo, t_hi = boot.ci(boot.transitions())
    lo_x = np.log10(max(t_lo, 10 ** x_range[0])) if np.isfinite(t_lo) else np.log10(t)
    hi_x = np.log10(min(t_hi, 10 ** x_range[1])) if np.isfinite(t_hi) else x_range[1]
    y = float(boot.fit.predict(np.array([t]))[0])
    ax.plot([lo_x, hi_x], [y, y], color=color, lw=1.0, marker="|", ms=5, zorder=5)
    ax.plot(np.log10(t), y, "D", ms=4.5, color=color, mec="black", mew=0.6, zorder=6)


def _efficiency_panel(
    ax: Axes, df: pd.DataFrame, error: str, colors: Colors, fits: Mapping[str, PowerLawBootstrap]
) -> None:
    df = df.assign(_err=error_values(df, error), _x=np.log10(df["labelled_slices"]))
    df = df[np.isfinite(df["_err"]) & (df["_err"] > 0)]
    budget_x = df.groupby("budget")["_x"].median()
    names = sorted(df["pipeline"].unique())
    offsets, width = _dodge(budget_x.to_numpy(), len(names))
    for off, name in zip(offsets, names, strict=True):
        sub = df[df["pipeline"] == name]
        data = [g["_err"].to_numpy() for _, g in sub.groupby("budget", sort=True)]
        pos = budget_x.loc[sorted(sub["budget"].unique())].to_numpy() + off
        ax.boxplot(
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
    x_range = (budget_x.min() - 0.25, budget_x.max() + 0.25)
    for name in names:
        if name in fits:
            _fit_overlay(ax, fits[name], colors[name], x_range)
    ticks = sorted(df.groupby("budget")["labelled_slices"].median().round().astype(int))
    ax.xaxis.set_major_locator(FixedLocator(np.log10(ticks)))
    ax.set_xticklabels([str(t) for t in ticks], rotation=45 if len(ticks) > 6 else 0)
    ax.set_xlim(*x_range)
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set(title=error, xlabel="labelled slices (log scale)", ylabel=f"test {error} (log scale)")


@_styled
def plot_data_efficiency(
    results: pd.DataFrame,
    stem: Path,
    *,
    fits: Mapping[str, Mapping[str, PowerLawBootstrap]] | None = None,
    colors: Colors | None = None,
    n_boot: int = 200,
    seed: int = 0,
) -> list[Path]:
    """Fig. 6: test error vs labelled slices, log-log, boxes over seeds per pipeline (dodged).

    Three panels (1 − mean IoU, Jaccard loss, 1 − 3D Dice) with the power-law fit of every
    pipeline, its pointwise 95 % bootstrap band and the transition n* (diamond, horizontal
    bar: its bootstrap CI). ``fits`` maps error name → pipeline → fit; missing ones are fitted
    here with ``n_boot`` replicates from ``np.random.default_rng(seed)``.
    """
    df = main_study(results)
    errors = [e for e, (col, _) in ERRORS.items() if col in df and df[col].notna().any()]
    if df.empty or not errors:
        log.info("figure 6 skipped: no main-study test metrics")
        return []
    colors = colors or pipeline_colors(df["pipeline"])
    fits = dict(fits or {})
    rng = np.random.default_rng(seed)
    k = df["pipeline"].nunique()  # many pipelines: one wide row each
    fig, axes = _grid(len(errors), *((3, (3.6, 3.1)) if k <= 4 else (1, (1.4 * k, 3.2))))
    for ax, error in zip(axes, errors, strict=True):
        if error not in fits:
            fits[error] = fit_pipelines(df, error, rng=rng, n_boot=n_boot)[0]
        _efficiency_panel(ax, df, error, colors, fits[error])
    law = r"power law $\alpha n^{\beta} + \gamma$ (95 % band)"
    extra = [
        Line2D([], [], color="grey", lw=1.3, label=law),
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
    _legend(fig, {p: colors[p] for p in sorted(df["pipeline"].unique())}, extra)
    return _save(fig, stem)


def _length_runs(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of the pretraining-length study with a known pretraining epoch."""
    if not {"study", "pretrain_epoch"} <= set(df.columns):
        return df.iloc[:0]
    df = df[df["study"] == "length"]
    return df[np.isfinite(df["pretrain_epoch"].astype(float))]


@_styled
def plot_pretraining_length(
    curves: pd.DataFrame, stem: Path, *, results: pd.DataFrame | None = None
) -> list[Path]:
    """Fig. 8: fine-tuning curves per domain-pretraining epoch (colour = epoch).

    One panel per (pipeline, budget) of the ``length`` study, mean ± std over seeds; with
    ``results`` a last panel shows test mean IoU against the pretraining epoch.
    """
    df = _length_runs(curves)
    if df.empty:
        log.info("figure 8 skipped: no pretraining-length study in the curves table")
        return []
    epochs = np.sort(df["pretrain_epoch"].unique())
    norm = mpl.colors.Normalize(epochs.min(), max(epochs.max(), epochs.min() + 1e-9))
    cmap = mpl.colormaps["viridis"]
    groups = list(df.groupby(["pipeline", "budget"], sort=True))
    res = None if results is None else _length_runs(results)
    extra = int(res is not None and not res.empty and "test_slice_iou_mean" in res)
    fig, axes = _grid(len(groups) + extra, 3, (3.0, 2.4))
    for ax, ((pipeline, budget), sub) in zip(axes, groups, strict=False):
        _curve_panel(ax, sub, "pretrain_epoch", lambda e: cmap(norm(e)))
        ax.set(
            title=f"{pipeline}, {budget} labelled slices",
            xlabel="fine-tuning step",
            ylabel="validation mean IoU",
        )
    if extra:
        ax = axes[-1]
        for pipeline, sub in res.groupby("pipeline"):
            agg = sub.groupby("pretrain_epoch")["test_slice_iou_mean"].agg(["mean", "std"])
            ax.errorbar(
                agg.index,
                agg["mean"],
                yerr=agg["std"].fillna(0),
                marker="o",
                ms=3,
                capsize=2,
                lw=1,
                label=pipeline,
            )
        ax.set(title="test mean IoU", xlabel="pretraining epoch", ylabel="test mean IoU")
        ax.legend(frameon=False)
    fig.colorbar(
        mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes, label="pretraining epoch", shrink=0.9
    )
    return _save(fig, stem)


def _overlay_title(path: Path) -> str:
    """``run/overlays/x.png`` → ``"run\nx"`` (the run names the pipeline); else the stem."""
    if path.parent.name == "overlays":
        return f"{path.parent.parent.name}\n{path.stem}"
    return path.stem


@_styled
def plot_overlays(
    paths: Sequence[Path], stem: Path, *, titles: Sequence[str] | None = None, ncols: int = 3
) -> list[Path]:
    """Fig. 7: tile existing example-overlay images into one figure (missing files skipped).

    Titles default to the run folder and file stem for ``<run_dir>/overlays/*.png``.
    """
    titles = titles or [_overlay_title(Path(p)) for p in paths]
    found = [(Path(p), t) for p, t in zip(paths, titles, strict=True) if Path(p).is_file()]
    if len(found) < len(paths):
        log.info("figure 7: %d of %d overlay images missing", len(paths) - len(found), len(paths))
    if not found:
        log.info("figure 7 skipped: no overlay images")
        return []
    fig, axes = _grid(len(found), ncols, (3.0, 3.0))
    for ax, (path, title) in zip(axes, found, strict=True):
        ax.imshow(mpimg.imread(path))
        ax.set_title(title)
        ax.set_axis_off()
    return _save(fig, stem)
