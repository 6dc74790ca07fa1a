"""Report and figures on a small synthetic study (3 pipelines × 4 budgets × 3 seeds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medssl.analysis import figures, run_figures
from medssl.analysis.report import write_report

PIPELINES = {
    "random": (0.9, -0.45, 0.10),
    "byol-acdc": (0.6, -0.55, 0.08),
    "supervised-imagenet": (0.7, -0.5, 0.09),
}  # α, β, γ of the test error
TAU = {"random": 120.0, "byol-acdc": 50.0, "supervised-imagenet": 80.0}  # curve time constant
BUDGETS = (3, 15, 75, 300)
SEEDS = (0, 1, 2)
EPOCHS = (0.0, 10.0, 50.0)


def _curve(
    run_id: str,
    meta: dict,
    final: float,
    tau: float,
    rng: np.random.Generator,
) -> list[dict]:
    steps = np.arange(0, 401, 25)
    iou = final * (1 - np.exp(-steps / tau)) + rng.normal(0, 0.01, steps.size)
    return [
        {"run_id": run_id, **meta, "step": int(s), "val_loss": float(1 - v), "val_iou": float(v)}
        for s, v in zip(steps, iou, strict=True)
    ]


def _run(
    run_id: str,
    study: str,
    pipeline: str,
    budget: int,
    seed: int,
    epoch: float,
    error: float,
    rng: np.random.Generator,
) -> dict:
    iou = float(np.clip(1 - error * np.exp(rng.normal(0, 0.05)), 0, 1))
    row = {
        "run_id": run_id,
        "study": study,
        "pipeline": pipeline,
        "budget_kind": "slices",
        "budget": budget,
        "labelled_slices": budget,
        "seed": seed,
        "pretrain_epoch": epoch,
        "steps": 400,
        "best_val_iou": iou + 0.01,
        "final_val_iou": iou,
        "steps_to_95": np.nan,
        "curve_auc": np.nan,
        "test_slice_iou_mean": iou,
        "test_jaccard_loss": 1 - iou + 0.02,
        "test_dice_3d_mean": 2 * iou / (1 + iou),
        "distance_units": "mm",
        "run_dir": f"/runs/{run_id}",
    }
    for k, s in enumerate(("RV", "MYO", "LV")):
        row |= {
            f"test_slice_iou_{s}": iou - 0.03 * (k - 1),
            f"test_dice_3d_{s}": iou,
            f"test_hd95_{s}": 5 + 10 * (1 - iou),
        }
    return row


def make_study(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Synthetic results/curves: power-law test errors, saturating learning curves."""
    rng = np.random.default_rng(seed)
    rows, curves = [], []
    for p, (a, b, g) in PIPELINES.items():
        for budget in BUDGETS:
            for s in SEEDS:
                rid = f"main-{p}-{budget}-{s}"
                rows.append(_run(rid, "main", p, budget, s, np.nan, a * budget**b + g, rng))
                meta = {
                    "study": "main",
                    "pipeline": p,
                    "budget": budget,
                    "seed": s,
                    "pretrain_epoch": np.nan,
                }
                curves += _curve(rid, meta, rows[-1]["final_val_iou"], TAU[p], rng)
    for epoch in EPOCHS:
        for s in SEEDS[:2]:
            rid = f"length-{epoch:g}-{s}"
            err = 0.6 * 15**-0.55 + 0.08 + 0.1 * np.exp(-epoch / 10)
            rows.append(_run(rid, "length", "byol-acdc", 15, s, epoch, err, rng))
            meta = {
                "study": "length",
                "pipeline": "byol-acdc",
                "budget": 15,
                "seed": s,
                "pretrain_epoch": epoch,
            }
            curves += _curve(rid, meta, rows[-1]["final_val_iou"], 120 - 1.5 * epoch, rng)
    return pd.DataFrame(rows), pd.DataFrame(curves)


@pytest.fixture(scope="module")
def study() -> tuple[pd.DataFrame, pd.DataFrame]:
    return make_study()


@pytest.fixture(scope="module")
def overlay_pngs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("overlays")
    paths = []
    for i in range(2):
        img = np.zeros((32, 32, 3))
        img[8:24, 8 + i : 20 + i, 0] = 1.0
        path = folder / f"case{i}.png"
        import matplotlib.image as mpimg

        mpimg.imsave(path, img)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def report(
    study: tuple[pd.DataFrame, pd.DataFrame],
    overlay_pngs: list[Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("report")
    results, curves = study
    paths = write_report(
        results,
        curves,
        out,
        "Test study",
        synthetic=True,
        overlays=overlay_pngs,
        notes=["pipeline x skipped: no weights"],
        n_boot=40,
    )
    return out, paths


def _markdown(results: pd.DataFrame, curves: pd.DataFrame, out: Path, title: str) -> str:
    """``report.md`` of a synthetic report of ``results`` written to ``out``."""
    write_report(results, curves, out, title, synthetic=True, n_boot=10)
    return (out / "report.md").read_text()


def test_every_figure_type_written_as_png_and_svg(report: tuple[Path, list[Path]]) -> None:
    out, paths = report
    for name in (
        "fig5a_learning_curves",
        "fig5b_auc",
        "fig6_data_efficiency",
        "fig7_overlays",
        "fig8_pretraining_length",
    ):
        for ext in (".png", ".svg"):
            path = out / "figures" / f"{name}{ext}"
            assert path in paths and path.stat().st_size > 1000, path
    assert (out / "figures" / "fig6_data_efficiency.png").read_bytes()[:4] == b"\x89PNG"
    assert "<svg" in (out / "figures" / "fig6_data_efficiency.svg").read_text()[:2000]


def test_reports_mention_every_pipeline_and_banner(report: tuple[Path, list[Path]]) -> None:
    out, paths = report
    md = (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    assert paths[:2] == [out / "report.md", out / "report.html"]
    for text in (md, page):
        assert "SYNTHETIC DATA" in text
        for pipeline in PIPELINES:
            assert pipeline in text
        for section in (
            "Summary",
            "Learning curves",
            "Data efficiency",
            "Pretraining length",
            "Example overlays",
            "Statistics",
            "Claims of the original study",
            "Notes",
        ):
            assert section in text
        assert "pipeline x skipped: no weights" in text
        # the claims table judges what these pipelines allow and names what is missing
        assert "Self-supervised learning offers a way to lower the need" in text
        assert "needs a hierarchical pipeline" in text and "cannot test" in text
    assert "figures/fig6_data_efficiency.png" in md
    assert "data:image/png;base64," in page and "<table" in page
    assert "transition n\\* (slices)" in md and "transition n* (slices)" in page
    assert md.count("Power law ε(n) = α·n^β + γ for") == 3  # one table per test error


def test_no_banner_without_synthetic_and_missing_studies_are_noted(
    study: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    results, curves = study
    main_only = results[results["study"] == "main"]
    paths = write_report(
        main_only, curves[curves["study"] == "main"], tmp_path, "Real", synthetic=False, n_boot=10
    )
    md = (tmp_path / "report.md").read_text()
    assert "SYNTHETIC" not in md
    assert "figure 8 skipped" in md and "figure 7 skipped" in md
    assert not any("fig8" in p.name or "fig7" in p.name for p in paths)


def test_figures_skip_missing_data(tmp_path: Path) -> None:
    empty = pd.DataFrame(
        columns=[
            "run_id",
            "study",
            "pipeline",
            "budget",
            "seed",
            "pretrain_epoch",
            "step",
            "val_loss",
            "val_iou",
        ]
    )
    assert figures.plot_learning_curves(empty, tmp_path / "a") == []
    assert figures.plot_pretraining_length(empty, tmp_path / "b") == []
    assert run_figures.plot_overlays([tmp_path / "missing.png"], tmp_path / "c") == []
    assert list(tmp_path.iterdir()) == []


def test_mean_curve_averages_runs_on_different_grids() -> None:
    runs = pd.DataFrame(
        {
            "run_id": ["a"] * 3 + ["b"] * 2,
            "step": [0, 10, 20, 0, 20],
            "val_iou": [0.0, 0.5, 1.0, 0.0, 1.0],
        }
    )
    c = figures.mean_curve(runs)
    assert c["step"].tolist() == [0, 10, 20]
    np.testing.assert_allclose(c["mean"], [0.0, 0.5, 1.0])  # b interpolated at step 10
    assert c["n"].tolist() == [2, 2, 2]


def test_report_without_runs_still_written(tmp_path: Path) -> None:
    paths = write_report(
        pd.DataFrame(),
        pd.DataFrame(),
        tmp_path,
        "Nothing yet",
        synthetic=True,
        notes=["pipeline y skipped: no data"],
    )
    assert [p.name for p in paths] == ["report.md", "report.html"]
    md = (tmp_path / "report.md").read_text()
    assert "SYNTHETIC DATA" in md and "No finished fine-tune runs." in md
    assert "pipeline y skipped: no data" in md


def test_report_without_curves_keeps_data_efficiency(
    study: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    results, _ = study
    paths = write_report(results, pd.DataFrame(), tmp_path, "No curves", synthetic=False, n_boot=10)
    names = {p.name for p in paths}
    assert "fig6_data_efficiency.png" in names and "fig5a_learning_curves.png" not in names
    assert "figure 5a skipped" in (tmp_path / "report.md").read_text()


def test_patient_sub_study_and_convergence_share_reported(
    study: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    """A further budget family (``study`` = ``patients``) gets its own table and stays out
    of the main study's figures and tests; the convergence share counts each run once."""
    from medssl.analysis.stats import convergence_share, metrics_table

    results, curves = study
    rng = np.random.default_rng(3)
    extra = [
        _run(f"pat-{p}-{n}-{s}", "patients", p, n, s, np.nan, 0.3 / n, rng)
        | {"budget_kind": "patients", "labelled_slices": 19 * n}
        for p in PIPELINES
        for n in (1, 3)
        for s in SEEDS
    ]
    both = pd.concat([results, pd.DataFrame(extra)], ignore_index=True)
    # converged: every main run but the first pipeline's smallest budget
    first = sorted(PIPELINES)[0]
    flags = ~((both["pipeline"] == first) & (both["budget"] == min(BUDGETS)))
    both["converged"] = flags.astype(object)
    both.loc[both["study"] == "length", "converged"] = None
    share = convergence_share(both)
    row = share[(share["study"] == "main") & (share["pipeline"] == first)]
    assert row.set_index("budget").loc[min(BUDGETS), "share"] == 0.0
    assert row.set_index("budget").loc[max(BUDGETS), "share"] == 1.0
    assert (share[share["study"] == "length"]["runs"] == 0).all()
    # the main table does not see the patient rows, the patients table only them
    assert metrics_table(both)["budget"].tolist() == metrics_table(results)["budget"].tolist()
    pat = metrics_table(both, study="patients")
    assert sorted(pat["budget"].unique()) == [1, 3] and (pat["n"] == len(SEEDS)).all()
    md = _markdown(both, curves, tmp_path, "Sub-study")
    assert "Sub-study `patients` (patients budgets)" in md
    runs = int(both["converged"].notna().sum())
    done = int((both["converged"] == True).sum())  # noqa: E712
    assert f"{done} of {runs} runs" in md


def test_hd95_with_postprocessing_and_clinical_errors_reported(
    study: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    results, curves = study
    results = results.copy()
    for s in ("RV", "MYO", "LV"):
        results[f"test_pp_hd95_{s}"] = results[f"test_hd95_{s}"] / 2
    top = results["labelled_slices"] == results["labelled_slices"].max()
    results["clinical_mae_LV_EF"] = np.where(top, 4.25, 9.0)
    md = _markdown(results, curves, tmp_path, "PP")
    assert "without and with ('pp')" in md
    head = next(line for line in md.splitlines() if "| pp RV |" in line)
    assert head.count("pp ") == 3
    assert "Clinical indices at the largest budget" in md
    assert "4.2 ± 0.0" in md and "9.0" not in md.split("Clinical indices")[1].split("\n\n")[1]


def test_report_names_pipelines_fine_tuned_from_several_pretraining_runs(
    study: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    """A pipeline whose fine-tunes loaded different weights (``init_fingerprint``) is
    named with each fingerprint and its run count; one realisation, random init (empty)
    and tables without the column say nothing."""
    results, curves = study
    pipelines = sorted(results["pipeline"].unique())
    assert "pretraining runs (weights" not in _markdown(results, curves, tmp_path / "plain", "F")
    results = results.copy()
    results["init_fingerprint"] = ""
    one, two = pipelines[1], pipelines[2]
    results.loc[results["pipeline"] == one, "init_fingerprint"] = "aaaa"
    mine = results["pipeline"] == two
    results.loc[mine, "init_fingerprint"] = np.where(results.loc[mine, "seed"] == 0, "bbbb", "cccc")
    md = _markdown(results, curves, tmp_path / "mixed", "F")
    runs = results[mine].drop_duplicates("run_id")
    n_b = int((runs["seed"] == 0).sum())
    assert f"{two}: cccc ({len(runs) - n_b} runs), bbbb ({n_b} runs)" in md
    assert f"{one}: aaaa" not in md and f"{pipelines[0]}: " not in md.split("started from")[1]


def test_a_partial_study_compares_pipelines_on_the_seeds_they_all_ran(
    study: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    """byol-acdc has only seed 0 at the smallest budget, random all three: the per-budget
    table compares them on seed 0 (random's other seeds are named as left out), while the
    paired tests and fits still use every run."""
    from medssl.analysis.stats import equal_seeds, metrics_table

    results, curves = study
    small = min(BUDGETS)
    gone = (results["pipeline"] == "byol-acdc") & (results["budget"] == small)
    gone &= results["seed"] != 0
    partial = results[~gone]
    equal = equal_seeds(partial)
    at_small = equal[(equal["budget"] == small) & (equal["study"] == "main")]
    assert set(at_small["seed"]) == {0} and at_small["pipeline"].nunique() == len(PIPELINES)
    assert len(equal[equal["budget"] == max(BUDGETS)]) == len(PIPELINES) * len(SEEDS)
    assert (equal["study"] == "length").sum() == (partial["study"] == "length").sum()
    kept = equal_seeds(curves[~curves["run_id"].isin(results.loc[gone, "run_id"])])
    assert set(kept.loc[(kept["budget"] == small) & (kept["study"] == "main"), "seed"]) == {0}
    table = metrics_table(equal).set_index(["budget", "pipeline"])
    seed0 = partial[(partial["budget"] == small) & (partial["seed"] == 0)]
    expected = seed0.set_index("pipeline")["test_slice_iou_mean"]
    for p in PIPELINES:
        assert table.loc[(small, p), "n"] == 1
        assert table.loc[(small, p), "test_slice_iou_mean_mean"] == pytest.approx(expected[p])
    md = _markdown(partial, curves, tmp_path, "Partial")
    other = len(PIPELINES) - 1  # the pipelines whose seeds 1 and 2 at the small budget wait
    assert f"at that budget has yet: {2 * other} run(s)" in md
    assert f"random at {small}: seeds 1, 2" in md
    assert "at each budget over the seeds every pipeline there ran" in md


def test_transition_is_caveated_when_the_largest_budget_did_not_converge(
    study: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    results, curves = study
    results = results.assign(converged=True)
    assert "miss the convergence rule" not in _markdown(results, curves, tmp_path / "ok", "Conv")
    top = results["budget"] == max(BUDGETS)
    first = results.index[top & (results["pipeline"] == "random")][:2]
    results.loc[first, "converged"] = False
    md = _markdown(results, curves, tmp_path / "no", "Conv")
    n = int(top.sum())
    assert f"At each fitted pipeline's largest budget, 2 of {n} runs miss the convergence" in md


def test_converged_runs_that_learned_little_are_called_out(
    study: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    results, curves = study
    results = results.assign(converged=True)
    assert "learned little" not in _markdown(results, curves, tmp_path / "a", "Low")
    results.loc[results.index[:3], "final_val_iou"] = 0.05
    md = _markdown(results, curves, tmp_path / "b", "Low")
    assert "3 of them end below 0.1 validation IoU" in md


def test_the_caveat_reads_numeric_flags_at_each_pipelines_own_largest_budget(
    study: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    """Flags stored as floats; byol-acdc ran only up to the second-largest budget, where
    one of its runs missed the rule: that run is counted, at byol's own largest budget."""
    results, curves = study
    results = results.assign(converged=1.0)
    top = max(BUDGETS)
    results = results[~((results["pipeline"] == "byol-acdc") & (results["budget"] == top))]
    byol = results[(results["pipeline"] == "byol-acdc") & (results["budget"] == min(BUDGETS))]
    extra = byol.assign(budget=1, labelled_slices=1, run_id=byol["run_id"] + "-one")
    results = pd.concat([results, extra], ignore_index=True)  # byol: 4 budgets, up to 75
    second = sorted(BUDGETS)[-2]
    miss = results.index[(results["pipeline"] == "byol-acdc") & (results["budget"] == second)][0]
    results.loc[miss, "converged"] = 0.0
    md = _markdown(results, curves, tmp_path, "Own")
    assert "At each fitted pipeline's largest budget, 1 of " in md


def test_auc_is_compared_with_the_baseline_budget_by_budget(
    report: tuple[Path, list[Path]],
) -> None:
    """byol-acdc's curves rise faster (τ 50 vs 120 steps): at every budget its AUC beats
    random's on all three seeds, so every median difference is positive."""
    md = (report[0] / "report.md").read_text()
    start = md.index("Learning-curve AUC against random at every budget")
    table = md[start:].split("\n\n")[1].splitlines()[2:]
    rows = [r.split(" | ") for r in table]
    assert len(rows) == len(BUDGETS) * (len(PIPELINES) - 1)
    byol = [r for r in rows if r[1] == "byol-acdc"]
    assert len(byol) == len(BUDGETS) and all(float(r[4]) > 0 for r in byol)
