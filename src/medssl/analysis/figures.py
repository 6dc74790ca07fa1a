"""Study figures (numbered as in Kalapos & Gyires-Tóth, ECCV-W 2022), PNG + SVG.

Every ``plot_*`` function takes the study tables and an output path stem (``figures/fig6``),
writes ``<stem>.png`` and ``<stem>.svg`` and returns the written paths as a :class:`Plotted`
list whose ``figure`` attribute is the drawn :class:`~matplotlib.figure.Figure` (for tests
and further editing); when its data are missing it logs why and returns an empty list.
Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas, never through
``pyplot``, so no global figure state or backend is touched.
"""

from __future__ import annotations

import logging
from collections import Counter
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

from medssl.analysis.numbers import run_name
from medssl.analysis.powerlaw import ERRORS, PowerLawBootstrap, fit_pipelines
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


#: Fig. 6 quantities: results column → (error name, whether the error is 1 − column).
QUANTITIES: dict[str, tuple[str, bool]] = {
    "paper_iou": ("1 − IoU (study metric)", True),
    "paper_jaccard_loss": ("Jaccard loss (study metric)", False),
    **{column: (name, one_minus) for name, (column, one_minus) in ERRORS.items()},
}
#: The study's quantity (per-slice IoU as the paper computes it): figures 6 and 8 default.
STUDY_METRIC = "paper_iou"
#: Older results have no study metrics: the metric each falls back to.
FALLBACK = {"paper_iou": "test_slice_iou_mean", "paper_jaccard_loss": "test_jaccard_loss"}
METRIC_LABELS = {
    "paper_iou": "test IoU (study metric)",
    "paper_jaccard_loss": "test Jaccard loss (study metric)",
    "test_slice_iou_mean": "test mean IoU",
    "test_jaccard_loss": "test Jaccard loss",
    "test_dice_3d_mean": "test mean 3D Dice",
}


class Plotted(list):
    """The paths a ``plot_*`` function wrote, with the drawn figure as ``figure``."""

    def __init__(self, paths: Iterable[Path] = (), figure: Figure | None = None) -> None:
        super().__init__(paths)
        self.figure = figure


def _has(df: pd.DataFrame, column: str) -> bool:
    return column in df and df[column].notna().any()


def study_metric(df: pd.DataFrame, metric: str = STUDY_METRIC, what: str = "figure") -> str | None:
    """``metric`` if ``df`` has values of it, else its fallback (logged as a warning), else
    ``None``."""
    if _has(df, metric):
        return metric
    fallback = FALLBACK.get(metric)
    if fallback and _has(df, fallback):
        log.warning(
            "%s: the results have no %s values (runs evaluated before the study metrics "
            "existed?); using %s instead",
            what,
            metric,
            fallback,
        )
        return fallback
    return None


def error_of(df: pd.DataFrame, column: str) -> pd.Series:
    """The Fig. 6 error of results ``column`` (``1 − column`` for IoU/Dice-like ones)."""
    one_minus = QUANTITIES[column][1]
    values = df[column].astype(float)
    return 1.0 - values if one_minus else values


def fit_metric(
    results: pd.DataFrame, column: str, *, rng: np.random.Generator, n_boot: int = 200
) -> tuple[dict[str, PowerLawBootstrap], list[str]]:
    """Power-law fits per pipeline of the error of any :data:`QUANTITIES` column.

    :func:`~medssl.analysis.powerlaw.fit_pipelines` reads an error through
    :data:`~medssl.analysis.powerlaw.ERRORS`; a column it does not list is handed over in
    place of an entry's column (with the same 1 − x convention), and the notes renamed.
    """
    name, one_minus = QUANTITIES[column]
    native = next((e for e, (c, om) in ERRORS.items() if c == column and om == one_minus), None)
    if native is not None:
        fits, notes = fit_pipelines(results, native, rng=rng, n_boot=n_boot)
        return fits, [n.replace(native, name, 1) for n in notes]
    carrier = next(e for e, (_, om) in ERRORS.items() if om == one_minus)
    carrier_col = ERRORS[carrier][0]
    df = results.assign(**{carrier_col: results[column].astype(float)})
    fits, notes = fit_pipelines(df, carrier, rng=rng, n_boot=n_boot)
    return fits, [n.replace(carrier, name, 1) for n in notes]


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


def _save(fig: Figure, stem: Path) -> Plotted:
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=200, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight", metadata={"Date": None})
    return Plotted(paths, fig)


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
        return Plotted()
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
        return Plotted()
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
    ax: Axes, df: pd.DataFrame, column: str, colors: Colors, fits: Mapping[str, PowerLawBootstrap]
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


def efficiency_columns(df: pd.DataFrame, metric: str | Sequence[str] = STUDY_METRIC) -> list[str]:
    """The results columns figure 6 plots for ``metric``: a :data:`QUANTITIES` column or an
    error name of :data:`~medssl.analysis.powerlaw.ERRORS`, a list of them, or ``"all"``
    (every test error of ERRORS, the study's included). A study metric without values
    falls back to its
    older counterpart with a logged warning; columns without values are left out."""
    if isinstance(metric, str):
        requested = [c for c, _ in ERRORS.values()] if metric == "all" else [metric]
    else:
        requested = list(metric)
    columns: list[str] = []
    for name in requested:
        column = ERRORS[name][0] if name in ERRORS else name
        if column not in QUANTITIES:
            raise ValueError(f"unknown figure-6 metric {name!r} (known: {', '.join(QUANTITIES)})")
        column = study_metric(df, column, "figure 6") if column in FALLBACK else column
        if column is not None and _has(df, column) and column not in columns:
            columns.append(column)
    return columns


@_styled
def plot_data_efficiency(
    results: pd.DataFrame,
    stem: Path,
    *,
    metric: str | Sequence[str] = STUDY_METRIC,
    fits: Mapping[str, Mapping[str, PowerLawBootstrap]] | None = None,
    colors: Colors | None = None,
    n_boot: int = 200,
    seed: int = 0,
) -> Plotted:
    """Fig. 6: test error vs labelled slices, log-log, boxes over seeds per pipeline (dodged).

    One panel per metric (see :func:`efficiency_columns`; default the study metric
    ``paper_iou``, plotted as 1 − IoU, falling back to ``test_slice_iou_mean`` for results
    without it; ``"all"``: 1 − mean IoU, Jaccard loss, 1 − 3D Dice and the study's two)
    with the power-law
    fit of every pipeline, its pointwise 95 % bootstrap band and the transition n*
    (diamond, horizontal bar: its bootstrap CI). ``fits`` maps error name (the panel title,
    :data:`QUANTITIES`) → pipeline → fit; missing ones are fitted here with ``n_boot``
    replicates from ``np.random.default_rng(seed)``.
    """
    df = main_study(results)
    columns = efficiency_columns(df, metric) if not df.empty else []
    if not columns:
        log.info("figure 6 skipped: no main-study test metrics")
        return Plotted()
    colors = colors or pipeline_colors(df["pipeline"])
    fits = dict(fits or {})
    rng = np.random.default_rng(seed)
    k = df["pipeline"].nunique()  # many pipelines: one wide row each
    if len(columns) == 1:
        layout = (1, (max(4.2, 0.09 * k * df["budget"].nunique() + 2.0), 3.4))
    else:
        layout = (3, (3.6, 3.1)) if k <= 4 else (1, (1.4 * k, 3.2))
    fig, axes = _grid(len(columns), *layout)
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
    curves: pd.DataFrame,
    stem: Path,
    *,
    results: pd.DataFrame | None = None,
    metric: str = STUDY_METRIC,
) -> Plotted:
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
        return Plotted()
    seen = [t["pretrain_epoch"].to_numpy(float) for t in (df, res) if not t.empty]
    epochs = np.unique(np.concatenate(seen))
    norm = mpl.colors.Normalize(epochs.min(), max(epochs.max(), epochs.min() + 1e-9))
    cmap = mpl.colormaps["viridis"]
    groups = list(df.groupby(["pipeline", "budget"], sort=True)) if not df.empty else []
    extra = int(column is not None)
    fig, axes = _grid(len(groups) + extra, 3, (3.0, 2.4))
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
    return _save(fig, stem)


def _overlay_title(path: Path) -> str:
    """``run/overlays/x.png`` → ``"run\nx"`` (the run names the pipeline); else the stem."""
    if path.parent.name == "overlays":
        return f"{path.parent.parent.name}\n{path.stem}"
    return path.stem


@_styled
def plot_overlays(
    paths: Sequence[Path] | Mapping[str, Sequence[Path]],
    stem: Path,
    *,
    titles: Sequence[str] | None = None,
    ncols: int = 3,
    max_rows: int | None = None,
) -> Plotted:
    """Fig. 7: tile existing example-overlay images into one figure (missing files skipped).

    ``paths`` as a mapping pipeline → images (the study report's default: every pipeline
    of the study) gives one panel column per pipeline, in the mapping's order, and one row
    per example (images matched across pipelines by file name, at most ``max_rows``); a
    pipeline without an image of a row gets an empty panel. A plain sequence is tiled
    ``ncols`` wide, titles defaulting to the run folder and file stem for
    ``<run_dir>/overlays/*.png``.
    """
    if isinstance(paths, Mapping):
        return _overlay_columns(paths, stem, max_rows)
    titles = titles or [_overlay_title(Path(p)) for p in paths]
    found = [(Path(p), t) for p, t in zip(paths, titles, strict=True) if Path(p).is_file()]
    if len(found) < len(paths):
        log.info("figure 7: %d of %d overlay images missing", len(paths) - len(found), len(paths))
    if not found:
        log.info("figure 7 skipped: no overlay images")
        return Plotted()
    fig, axes = _grid(len(found), ncols, (3.0, 3.0))
    for ax, (path, title) in zip(axes, found, strict=True):
        ax.imshow(mpimg.imread(path))
        ax.set_title(title)
        ax.set_axis_off()
    return _save(fig, stem)


def _column_title(pipeline: str, images: Sequence[Path]) -> str:
    """The images' folder (``<pipeline>_<budget>-slices``, which names the run's budget)
    when it is the pipeline's, else the pipeline."""
    folder = images[0].parent.name if images else ""
    return folder if folder.startswith(f"{pipeline}_") else pipeline


def _overlay_columns(
    columns: Mapping[str, Sequence[Path]], stem: Path, max_rows: int | None
) -> Plotted:
    found = {p: [Path(x) for x in xs if Path(x).is_file()] for p, xs in columns.items()}
    if not any(found.values()):
        log.info("figure 7 skipped: no overlay images")
        return Plotted()
    for pipeline, images in found.items():
        if not images:
            log.info("figure 7: no overlay image of pipeline %s", pipeline)
    rows: list[str] = []
    for images in found.values():
        rows += [p.stem for p in images if p.stem not in rows]
    rows = rows[:max_rows] if max_rows else rows
    by_stem = {p: {x.stem: x for x in xs} for p, xs in found.items()}
    ncols = len(found)
    fig = Figure(figsize=(2.6 * ncols, 2.8 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), ncols, squeeze=False)
    for c, pipeline in enumerate(found):
        for r, row in enumerate(rows):
            ax = axes[r, c]
            ax.set_axis_off()
            ax.set_gid(f"overlay:{pipeline}")
            ax.set_title(f"{_column_title(pipeline, found[pipeline])}\n{row}" if r == 0 else row)
            path = by_stem[pipeline].get(row)
            if path is None:
                ax.text(0.5, 0.5, "no overlay", ha="center", va="center", transform=ax.transAxes)
            else:
                ax.imshow(mpimg.imread(path))
    return _save(fig, stem)


@_styled
def plot_pretraining_curves(pretraining: pd.DataFrame, stem: Path) -> Plotted:
    """Pretraining loss per epoch (mean over the epoch's logged steps), one panel per
    pretraining job (methods' losses have different scales) with a line per run of it (a
    job run again on another machine has a superseded run ``<id>.<n>`` too: both are
    drawn, so the two realisations can be compared); a run whose collapse monitor fired
    is marked."""
    if pretraining is not None:
        pretraining = pretraining[np.isfinite(pretraining["loss"].astype(float))]
    if pretraining is None or pretraining.empty:
        return Plotted([], None)
    job = pretraining["run_id"].astype(str).str.split(".").str[0]  # <id> of <id>.<n>
    jobs = list(pretraining.assign(_job=job).groupby(["pipeline", "_job"], sort=True))
    per_pipeline = Counter(pipeline for (pipeline, _), _ in jobs)  # > 1: name the job
    fig, axes = _grid(len(jobs), 4, (3.0, 2.4))
    for ax, ((pipeline, job_id), runs) in zip(axes, jobs, strict=False):
        several = runs["run_id"].nunique() > 1
        for run_id, sub in runs.groupby("run_id", sort=False):  # collect's order: oldest first
            sub = sub.sort_values("epoch")
            old = bool(sub["superseded"].astype(bool).any()) if "superseded" in sub else False
            collapsed = bool(sub["collapsed"].astype(bool).any())
            label = run_name(run_id, old)
            label += " (collapse flagged)" if collapsed else ""
            ax.plot(
                sub["epoch"] + 1, sub["loss"], marker="o", ms=2.5, lw=1.2,
                ls="--" if old else "-", label=label if several else None,
            )  # fmt: skip
        collapsed = bool(runs["collapsed"].astype(bool).any())
        title = f"{pipeline}" + (f" ({job_id})" if per_pipeline[pipeline] > 1 else "")
        ax.set_title(title + (" (collapse flagged)" if collapsed else ""), fontsize=8)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{runs['method'].iloc[0]} loss")
        if several:
            ax.legend(fontsize=5)
    return _save(fig, stem)
