"""Figures of single runs: figure 7 (example overlays tiled per pipeline) and the
pretraining loss curves, PNG + SVG like :mod:`medssl.analysis.figures`."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from medssl.analysis import plotting
from medssl.analysis.numbers import run_name

log = logging.getLogger(__name__)


def _overlay_title(path: Path) -> str:
    """``run/overlays/x.png`` → ``"run\nx"`` (the run names the pipeline); else the stem."""
    if path.parent.name == "overlays":
        return f"{path.parent.parent.name}\n{path.stem}"
    return path.stem


@plotting.styled
def plot_overlays(
    paths: Sequence[Path] | Mapping[str, Sequence[Path]],
    stem: Path,
    *,
    titles: Sequence[str] | None = None,
    ncols: int = 3,
    max_rows: int | None = None,
) -> plotting.Plotted:
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
        return plotting.Plotted()
    fig, axes = plotting.grid(len(found), ncols, (3.0, 3.0))
    for ax, (path, title) in zip(axes, found, strict=True):
        ax.imshow(mpimg.imread(path))
        ax.set_title(title)
        ax.set_axis_off()
    return plotting.save(fig, stem)


def _column_title(pipeline: str, images: Sequence[Path]) -> str:
    """The images' folder (``<pipeline>_<budget>-slices``, which names the run's budget)
    when it is the pipeline's, else the pipeline."""
    folder = images[0].parent.name if images else ""
    return folder if folder.startswith(f"{pipeline}_") else pipeline


def _overlay_columns(
    columns: Mapping[str, Sequence[Path]], stem: Path, max_rows: int | None
) -> plotting.Plotted:
    found = {p: [Path(x) for x in xs if Path(x).is_file()] for p, xs in columns.items()}
    if not any(found.values()):
        log.info("figure 7 skipped: no overlay images")
        return plotting.Plotted()
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
    return plotting.save(fig, stem)


@plotting.styled
def plot_pretraining_curves(pretraining: pd.DataFrame, stem: Path) -> plotting.Plotted:
    """Pretraining loss per epoch (mean over the epoch's logged steps), one panel per
    pretraining job (methods' losses have different scales) with a line per run of it (a
    job run again on another machine has a superseded run ``<id>.<n>`` too: both are
    drawn, so the two realisations can be compared); a run whose collapse monitor fired
    is marked."""
    if pretraining is not None:
        pretraining = pretraining[np.isfinite(pretraining["loss"].astype(float))]
    if pretraining is None or pretraining.empty:
        return plotting.Plotted([], None)
    job = pretraining["run_id"].astype(str).str.split(".").str[0]  # <id> of <id>.<n>
    jobs = list(pretraining.assign(_job=job).groupby(["pipeline", "_job"], sort=True))
    per_pipeline = Counter(pipeline for (pipeline, _), _ in jobs)  # > 1: name the job
    fig, axes = plotting.grid(len(jobs), 4, (3.0, 2.4))
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
    return plotting.save(fig, stem)
