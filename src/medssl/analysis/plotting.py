"""The drawing machinery every study figure shares: the style, a fixed colour per
pipeline, panel grids, the legend below the panels, and saving as PNG + SVG.

Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas, never through
``pyplot``, so no global figure state or backend is touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import wraps
from pathlib import Path
from typing import Any

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

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


class Plotted(list):
    """The paths a ``plot_*`` function wrote, with the drawn figure as ``figure``."""

    def __init__(self, paths: Iterable[Path] = (), figure: Figure | None = None) -> None:
        super().__init__(paths)
        self.figure = figure


def styled(fn: Callable[..., list[Path]]) -> Callable[..., list[Path]]:
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


def save(fig: Figure, stem: Path) -> Plotted:
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=200, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight", metadata={"Date": None})
    return Plotted(paths, fig)


def grid(n: int, ncols: int, panel: tuple[float, float]) -> tuple[Figure, list[Axes]]:
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig = Figure(figsize=(panel[0] * ncols, panel[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, list(axes[:n])


def legend(fig: Figure, colors: Colors, extra: Sequence[Any] = ()) -> None:
    handles = [Patch(color=c, label=p) for p, c in colors.items()] + list(extra)
    fig.legend(
        handles=handles, loc="outside lower center", ncols=min(len(handles), 5), frameon=False
    )
