"""What the study figures show (not only that they are written): 5b's violin order, 6's boxes
and metric, 7's one column per pipeline, 8's one point per pretraining epoch."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from medssl.analysis import figures, run_figures
from medssl.experiments.report import _overlays
from medssl.experiments.study import PAPER_LENGTH_EPOCHS
from tests.experiments.test_study_files import PAPER_PIPELINES as PIPELINES

QUALITY = dict(zip(PIPELINES, (0.50, 0.70, 0.65, 0.60, 0.80, 0.75), strict=True))
BUDGETS = (1, 3, 7, 15, 30, 75, 150, 300, 749, 1498)
SEEDS = (0, 13, 42)


def _results(paper: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for p in PIPELINES:
        for b in BUDGETS:
            for s in SEEDS:
                iou = 1 - (1 - QUALITY[p]) * (0.1 + b**-0.4) * np.exp(rng.normal(0, 0.03))
                rows.append(
                    {
                        "run_id": f"{p}-{b}-{s}",
                        "study": "main",
                        "pipeline": p,
                        "budget_kind": "slices",
                        "budget": b,
                        "labelled_slices": b,
                        "seed": s,
                        "pretrain_epoch": np.nan,
                        "curve_auc": QUALITY[p] + rng.normal(0, 0.005),
                        "test_slice_iou_mean": iou,
                        "test_jaccard_loss": 1 - iou,
                        "test_dice_3d_mean": iou,
                        **(
                            {"paper_iou": iou - 0.02, "paper_jaccard_loss": 1.02 - iou}
                            if paper
                            else {}
                        ),
                    }
                )
    return pd.DataFrame(rows)


def _length_tables(epochs=PAPER_LENGTH_EPOCHS) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, curves = [], []
    for e in epochs:
        run = f"len-{e}"
        meta = {
            "run_id": run,
            "study": "length",
            "pipeline": "byol-imagenet+byol-acdc",
            "budget": 1498,
            "seed": 13,
            "pretrain_epoch": float(e),
        }
        iou = 0.8 + 0.05 * np.log1p(e) / np.log1p(400)
        rows.append({**meta, "labelled_slices": 1498, "paper_iou": iou, "test_slice_iou_mean": iou})
        curves += [
            {**meta, "step": s, "val_loss": 1 - iou, "val_iou": iou * s / 100} for s in (50, 100)
        ]
    return pd.DataFrame(rows), pd.DataFrame(curves)


def test_fig5b_violins_are_ordered_by_descending_median(tmp_path: Path) -> None:
    out = figures.plot_auc_violins(_results(), tmp_path / "fig5b", budgets=[3, 300])
    fig = out.figure
    assert out and fig is not None
    expected = sorted(PIPELINES, key=lambda p: -QUALITY[p])
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_xticklabels()]
    assert len(panels) == 2
    for ax in panels:
        assert [t.get_text() for t in ax.get_xticklabels()] == expected


def test_fig6_has_a_box_per_pipeline_and_budget_of_the_study_metric(tmp_path: Path) -> None:
    out = figures.plot_data_efficiency(_results(), tmp_path / "fig6", n_boot=10)
    panels = [ax for ax in out.figure.axes if ax.get_visible() and ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["1 − IoU (study metric)"]
    boxes = [a for a in panels[0].get_children() if str(a.get_gid()).startswith("box:")]
    assert len(boxes) == len(PIPELINES) * len(BUDGETS)
    for p in PIPELINES:
        assert sum(b.get_gid() == f"box:{p}" for b in boxes) == len(BUDGETS)
    # every run is also a point in its pipeline's colour (a one-run box is only a line)
    points = {
        a.get_gid(): a for a in panels[0].get_children() if str(a.get_gid()).startswith("runs:")
    }
    assert set(points) == {f"runs:{p}" for p in PIPELINES}
    assert all(len(a.get_offsets()) == len(BUDGETS) * len(SEEDS) for a in points.values())
    legend = [t.get_text() for leg in out.figure.legends for t in leg.get_texts()]
    assert set(PIPELINES) <= set(legend)


def test_fig6_falls_back_to_the_old_metric_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="medssl.analysis.quantities"):
        out = figures.plot_data_efficiency(_results(paper=False), tmp_path / "fig6", n_boot=10)
    assert any("paper_iou" in r.getMessage() for r in caplog.records)
    titles = [ax.get_title() for ax in out.figure.axes if ax.get_visible() and ax.get_title()]
    assert titles == ["1 − mean IoU"]
    every = figures.plot_data_efficiency(_results(), tmp_path / "all", metric="all", n_boot=5)
    titles = [ax.get_title() for ax in every.figure.axes if ax.get_visible() and ax.get_title()]
    assert titles == [
        "1 − mean IoU",
        "Jaccard loss",
        "1 − 3D Dice",
        "1 − IoU (study metric)",
        "Jaccard loss (study metric)",
    ]


def _png(path: Path, value: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    mpimg.imsave(path, np.full((8, 8), value), vmin=0, vmax=1, cmap="gray")
    return path


def test_fig7_has_one_panel_column_per_pipeline(tmp_path: Path) -> None:
    images = {
        p: [_png(tmp_path / p / f"patient{k:03d}_ED.png", i / 6) for k in (1, 11)]
        for i, p in enumerate(PIPELINES)
    }
    out = run_figures.plot_overlays(images, tmp_path / "fig7")
    axes = [ax for ax in out.figure.axes if str(ax.get_gid()).startswith("overlay:")]
    columns: dict[float, set[str]] = {}
    for ax in axes:
        columns.setdefault(round(ax.get_position().x0, 3), set()).add(ax.get_gid())
    assert len(columns) == len(PIPELINES)
    assert all(len(gids) == 1 for gids in columns.values())  # one pipeline per column
    ordered = [next(iter(columns[x])).removeprefix("overlay:") for x in sorted(columns)]
    assert ordered == list(PIPELINES)  # in the given (study) order
    assert len(axes) == len(PIPELINES) * 2  # one row per example volume


def test_report_overlays_cover_every_pipeline_of_the_study(tmp_path: Path) -> None:
    results = _results()
    results["run_dir"] = [str(tmp_path / "runs" / r) for r in results["run_id"]]
    for run in results["run_dir"]:
        for k in (1, 11, 21):
            _png(Path(run) / "overlays" / f"patient{k:03d}_ED.png", 0.5)
    picked = _overlays(results, tmp_path, list(PIPELINES))
    assert list(picked) == list(PIPELINES)  # all six, not the first four
    assert all(len(v) == 2 for v in picked.values())
    assert {tuple(p.name for p in v) for v in picked.values()} == {
        ("patient001_ED.png", "patient011_ED.png")
    }
    assert all("1498-slices" in str(v[0].parent) for v in picked.values())


def test_report_overlays_fall_back_only_to_copies_of_the_same_run(tmp_path: Path) -> None:
    """Without the runs' overlays (a fresh clone), figure 7 uses the committed copies, but
    only those copied from the run it shows; examples of runs no longer shown go."""
    results = _results()
    results["run_dir"] = [str(tmp_path / "runs" / r) for r in results["run_id"]]
    for run in results["run_dir"]:
        _png(Path(run) / "overlays" / "patient001_ED.png", 0.5)
    old = tmp_path / "figures" / "overlay_examples" / "random_300-slices"
    _png(old / "patient011_ED.png", 0.5)  # from an earlier report, at a smaller budget
    first = _overlays(results, tmp_path, list(PIPELINES))
    assert not old.exists()
    assert all([p.name for p in v] == ["patient001_ED.png"] for v in first.values())
    for run in results["run_dir"]:  # what a fresh clone has: no run overlays
        shutil.rmtree(Path(run) / "overlays")
    again = _overlays(results, tmp_path, list(PIPELINES))
    assert again == first
    # a copy made from another run (say, before a smaller seed ran) is not used
    other = first[PIPELINES[0]][0].parent / "source_run.txt"
    other.write_text("some-other-run\n")
    third = _overlays(results, tmp_path, list(PIPELINES))
    assert third[PIPELINES[0]] == [] and third[PIPELINES[1]] == first[PIPELINES[1]]


def test_fig8_has_one_point_per_pretraining_epoch(tmp_path: Path) -> None:
    results, curves = _length_tables()
    out = figures.plot_pretraining_length(curves, tmp_path / "fig8", results=results)
    lines = [ln for ax in out.figure.axes for ln in ax.get_lines() if ln.get_gid()]
    (line,) = [ln for ln in lines if ln.get_gid() == "epochs:byol-imagenet+byol-acdc"]
    assert list(line.get_xdata()) == [float(e) for e in PAPER_LENGTH_EPOCHS]
    assert np.allclose(line.get_ydata(), results.sort_values("pretrain_epoch")["paper_iou"])
    ax = line.axes
    assert ax.get_xscale() == "symlog" and ax.get_title() == "test IoU (study metric)"


def test_report_overlays_show_the_largest_cell_every_pipeline_ran(tmp_path: Path) -> None:
    """A partial study: only the first pipeline ran the large budgets. Figure 7 shows every
    pipeline at the largest budget and first seed they all ran, not the first pipeline at
    its own largest (150 times the labels of the others)."""
    results = _results()
    first = PIPELINES[0]
    partial = results[(results["pipeline"] == first) | (results["budget"] <= 15)]
    partial = partial[(partial["pipeline"] == first) | (partial["seed"] == 13)]
    partial = partial.assign(run_dir=[str(tmp_path / "runs" / r) for r in partial["run_id"]])
    for run in partial["run_dir"]:
        _png(Path(run) / "overlays" / "patient001_ED.png", 0.5)
    picked = _overlays(partial, tmp_path, list(PIPELINES))
    assert {v[0].parent.name for v in picked.values()} == {f"{p}_15-slices" for p in PIPELINES}
    assert (picked[first][0].parent / "source_run.txt").read_text().strip() == f"{first}-15-13"
    # its panels are titled with the run's folder, which names the budget
    out = run_figures.plot_overlays(picked, tmp_path / "fig7")
    titles = {ax.get_title().split("\n")[0] for ax in out.figure.axes if ax.get_title()}
    assert titles == {f"{p}_15-slices" for p in PIPELINES}


def test_fig6_draws_a_fit_dashed_beyond_the_pipelines_own_budgets(tmp_path: Path) -> None:
    results = _results()
    first = PIPELINES[0]
    partial = results[(results["pipeline"] != first) | (results["budget"] <= 30)]
    out = figures.plot_data_efficiency(partial, tmp_path / "fig6", n_boot=10)
    (ax,) = [a for a in out.figure.axes if a.get_visible() and a.get_title()]
    dashed = [ln for ln in ax.get_lines() if ln.get_gid() == "fit-extrapolated"]
    solid = [ln for ln in ax.get_lines() if ln.get_gid() == "fit"]
    assert len(solid) == len(PIPELINES)
    # the partial pipeline extrapolates above 30 slices; the others only in the margins
    beyond = [ln for ln in dashed if np.nanmax(ln.get_xdata()) > np.log10(max(BUDGETS))]
    far = [
        ln for ln in dashed if np.nanmin(ln.get_xdata()) < np.log10(31) < np.nanmax(ln.get_xdata())
    ]
    assert len(far) == 1 and len(beyond) >= 1
    for ln in solid:
        xs = np.asarray(ln.get_xdata(), float)
        assert np.nanmin(xs) >= np.log10(min(BUDGETS)) - 1e-6
