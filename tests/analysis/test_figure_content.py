"""What the study figures draw (not only that files are written).

The ``plot_*`` functions return the written paths, not the figure, so the figure is
captured on its way into ``plotting.save``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import PathPatch

from medssl.analysis import figures, plotting, run_figures
from tests.analysis.test_report import BUDGETS, EPOCHS, PIPELINES, SEEDS, make_study


@pytest.fixture(scope="module")
def study() -> tuple[pd.DataFrame, pd.DataFrame]:
    return make_study()


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """Every figure a plotting function saves, in order."""
    figs: list[Figure] = []
    save = plotting.save

    def keep(fig: Figure, stem: Path) -> list[Path]:
        figs.append(fig)
        return save(fig, stem)

    monkeypatch.setattr(plotting, "save", keep)
    return figs


def _panels(fig: Figure) -> list:
    """The figure's visible data panels (no colour bar, no hidden grid cells)."""
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def _rgb(color) -> tuple[float, float, float]:
    return tuple(round(c, 6) for c in to_rgb(color))


def _one_figure(paths: list[Path], captured: list[Figure], stem: Path) -> Figure:
    assert paths == [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    assert all(p.stat().st_size > 0 for p in paths)
    assert len(captured) == 1
    if hasattr(paths, "figure"):  # the plotting functions also hand back their figure
        assert paths.figure is captured[0]
    return captured[0]


def _auc(sub: pd.DataFrame) -> float:
    """Trapezoid area under val_iou over the step span (the curve's mean value)."""
    sub = sub.sort_values("step")
    s, v = sub["step"].to_numpy(float), sub["val_iou"].to_numpy(float)
    area = sum((s[i + 1] - s[i]) * (v[i + 1] + v[i]) / 2 for i in range(len(s) - 1))
    return area / (s[-1] - s[0])


def test_fig5a_one_mean_curve_per_pipeline_and_budget(
    study: tuple[pd.DataFrame, pd.DataFrame], captured: list[Figure], tmp_path: Path
) -> None:
    _, curves = study
    stem = tmp_path / "fig5a"
    fig = _one_figure(figures.plot_learning_curves(curves, stem), captured, stem)
    colors = {_rgb(c): p for p, c in plotting.pipeline_colors(PIPELINES).items()}
    panels = _panels(fig)
    assert [ax.get_title() for ax in panels] == [f"{b} labelled slices" for b in sorted(BUDGETS)]
    main = curves[curves["study"] == "main"]
    for ax, budget in zip(panels, sorted(BUDGETS), strict=True):
        lines = ax.get_lines()
        assert len(lines) == len(PIPELINES)
        assert len(ax.collections) == len(PIPELINES)  # one ± s.d. band per curve
        drawn = {colors[_rgb(line.get_color())]: line for line in lines}
        assert set(drawn) == set(PIPELINES)
        for pipeline, line in drawn.items():
            runs = main[(main["budget"] == budget) & (main["pipeline"] == pipeline)]
            mean = runs.groupby("step")["val_iou"].mean()  # seeds share the step grid
            np.testing.assert_allclose(line.get_xdata(), mean.index.to_numpy(float))
            np.testing.assert_allclose(line.get_ydata(), mean.to_numpy(), rtol=1e-12)
    (legend,) = fig.legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == [*sorted(PIPELINES), "± 1 s.d. over seeds"]


def test_fig5b_violins_ordered_by_descending_median_auc(
    study: tuple[pd.DataFrame, pd.DataFrame], captured: list[Figure], tmp_path: Path
) -> None:
    results, curves = study
    stem = tmp_path / "fig5b"
    fig = _one_figure(figures.plot_auc_violins(results, stem, curves=curves), captured, stem)
    panels = _panels(fig)
    assert len(panels) == len(BUDGETS)
    main = curves[curves["study"] == "main"]
    aucs = {rid: _auc(sub) for rid, sub in main.groupby("run_id")}
    meta = results.set_index("run_id")
    not_alphabetical = 0
    for ax, budget in zip(panels, sorted(BUDGETS), strict=True):
        assert ax.get_title() == f"{budget} labelled slices"
        medians = {
            p: float(
                np.median(
                    [
                        aucs[r]
                        for r in aucs
                        if meta.loc[r, "pipeline"] == p and meta.loc[r, "budget"] == budget
                    ]
                )
            )
            for p in PIPELINES
        }
        expected = sorted(medians, key=lambda p: -medians[p])
        assert [t.get_text() for t in ax.get_xticklabels()] == expected, medians
        not_alphabetical += expected != sorted(PIPELINES)
        # the black bar of each violin sits at that pipeline's median AUC, at its position
        bars = [c for c in ax.collections if type(c).__name__ == "LineCollection"]
        segments = [seg for c in bars for seg in c.get_segments()]
        assert len(segments) == len(PIPELINES)
        for i, segment in enumerate(sorted(segments, key=lambda seg: seg[0][0])):
            (x0, y0), (x1, y1) = segment
            assert x0 == pytest.approx(i - 0.3) and x1 == pytest.approx(i + 0.3)
            assert y0 == y1 == pytest.approx(medians[expected[i]])
        points = [c for c in ax.collections if type(c).__name__ == "PathCollection"]
        assert sum(len(c.get_offsets()) for c in points) == len(PIPELINES) * len(SEEDS)
    assert not_alphabetical  # the ordering is by value, not by name


def test_fig6_one_box_per_pipeline_and_budget_in_every_panel(
    study: tuple[pd.DataFrame, pd.DataFrame], captured: list[Figure], tmp_path: Path
) -> None:
    results, _ = study
    stem = tmp_path / "fig6"
    paths = figures.plot_data_efficiency(results, stem, metric="all", n_boot=10)
    fig = _one_figure(paths, captured, stem)
    panels = _panels(fig)
    errors = {
        "1 − mean IoU": 1 - results["test_slice_iou_mean"],
        "Jaccard loss": results["test_jaccard_loss"],
        "1 − 3D Dice": 1 - results["test_dice_3d_mean"],
    }
    assert [ax.get_title() for ax in panels] == list(errors)
    colors = plotting.pipeline_colors(PIPELINES)
    main = results["study"] == "main"
    for ax, (name, err) in zip(panels, errors.items(), strict=True):
        boxes = [p for p in ax.patches if isinstance(p, PathPatch)]
        assert len(boxes) == len(PIPELINES) * len(BUDGETS), name
        for pipeline, color in colors.items():
            mine = [b for b in boxes if _rgb(b.get_facecolor()) == _rgb(color)]
            assert len(mine) == len(BUDGETS), (name, pipeline)
        assert [t.get_text() for t in ax.get_xticklabels()] == [str(b) for b in sorted(BUDGETS)]
        assert ax.get_yscale() == "log"
        # the median bars are the medians over seeds of every (pipeline, budget)
        expected = sorted(err[main].groupby([results["pipeline"], results["budget"]]).median())
        medians = sorted(
            float(line.get_ydata()[0])
            for line in ax.get_lines()
            if _rgb(line.get_color()) == (0.0, 0.0, 0.0) and line.get_linewidth() == 0.8
        )
        np.testing.assert_allclose(medians, expected, rtol=1e-12)
    (legend,) = fig.legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels[: len(PIPELINES)] == sorted(PIPELINES) and len(labels) == len(PIPELINES) + 3
    assert "extrapolated beyond its budgets" in labels


def test_fig8_one_curve_per_pretraining_epoch_and_test_iou_points(
    study: tuple[pd.DataFrame, pd.DataFrame], captured: list[Figure], tmp_path: Path
) -> None:
    results, curves = study
    stem = tmp_path / "fig8"
    paths = figures.plot_pretraining_length(curves, stem, results=results)
    fig = _one_figure(paths, captured, stem)
    curve_ax, test_ax = _panels(fig)  # one (pipeline, budget) of the length study + test IoU
    assert curve_ax.get_title() == "byol-acdc, 15 labelled slices"
    length = curves[curves["study"] == "length"]
    norm = mpl.colors.Normalize(min(EPOCHS), max(EPOCHS))
    cmap = mpl.colormaps["viridis"]
    lines = curve_ax.get_lines()
    assert len(lines) == len(EPOCHS)
    for line, epoch in zip(lines, sorted(EPOCHS), strict=True):
        assert _rgb(line.get_color()) == _rgb(cmap(norm(epoch)))
        mean = length[length["pretrain_epoch"] == epoch].groupby("step")["val_iou"].mean()
        np.testing.assert_allclose(line.get_ydata(), mean.to_numpy(), rtol=1e-12)
    assert test_ax.get_title() == "test mean IoU"
    (points,) = test_ax.containers
    x, y = points.lines[0].get_data()
    runs = results[results["study"] == "length"]
    agg = runs.groupby("pretrain_epoch")["test_slice_iou_mean"].mean()
    np.testing.assert_allclose(x, sorted(EPOCHS))
    np.testing.assert_allclose(y, agg.loc[sorted(EPOCHS)].to_numpy(), rtol=1e-12)
    assert [t.get_text() for t in test_ax.get_legend().get_texts()] == ["byol-acdc"]
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)


def test_fig7_tiles_the_overlay_images_with_their_titles(
    captured: list[Figure], tmp_path: Path
) -> None:
    paths = []
    for i in range(2):
        img = np.zeros((16, 16, 3))
        img[4:12, 2 + 3 * i : 8 + 3 * i, 0] = 1.0
        run = tmp_path / f"run{i}" / "overlays"
        run.mkdir(parents=True)
        paths.append(run / f"case{i}.png")
        mpimg.imsave(paths[-1], img)
    stem = tmp_path / "fig7"
    missing = tmp_path / "missing.png"
    fig = _one_figure(
        run_figures.plot_overlays([paths[0], missing, paths[1]], stem), captured, stem
    )
    panels = _panels(fig)
    assert [ax.get_title() for ax in panels] == ["run0\ncase0", "run1\ncase1"]
    for ax, path in zip(panels, paths, strict=True):
        (image,) = ax.get_images()
        np.testing.assert_array_equal(np.asarray(image.get_array()), mpimg.imread(path))


def test_fig6_many_pipelines_at_two_budgets_fit_inside_the_axes(
    study: tuple[pd.DataFrame, pd.DataFrame], captured: list[Figure], tmp_path: Path
) -> None:
    """Nine pipelines dodged around two budgets a decade apart: no box is clipped."""
    results, _ = study
    main = results[(results["study"] == "main") & results["budget"].isin(sorted(BUDGETS)[:2])]
    many = pd.concat([main.assign(pipeline=f"{p}-{k}") for p in PIPELINES for k in range(3)])
    stem = tmp_path / "fig6"
    paths = figures.plot_data_efficiency(many, stem, n_boot=5)
    (ax,) = _panels(_one_figure(paths, captured, stem))
    boxes = [p for p in ax.patches if isinstance(p, PathPatch)]
    assert len(boxes) == 9 * 2
    lo, hi = ax.get_xlim()
    for b in boxes:
        xs = b.get_path().vertices[:, 0]
        assert lo <= xs.min() and xs.max() <= hi
