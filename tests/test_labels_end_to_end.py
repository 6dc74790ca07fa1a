"""A dataset whose labels are not ACDC's, through prepare → finetune → evaluate → collect.

An nnU-Net v2 raw dataset declares ``{0: background, 1: Anterior, 2: Posterior}``; every
table, curve and metric of medssl must name those structures (never RV/MYO/LV), and no
cardiac clinical index may be reported for it, only per-label volumes in ml.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medssl.artifacts.labels import LabelSet
from medssl.artifacts.rundir import RunDir
from medssl.data.cache_read import SliceCache
from medssl.data.cache_write import prepare_cache
from medssl.data.nifti import from_slices, write_nifti
from medssl.evaluation.evaluate import evaluate
from medssl.experiments.collect import collect
from medssl.experiments.drive import run_study
from medssl.experiments.report import study_report
from medssl.experiments.study import parse_study
from medssl.training.finetune import finetune
from tests import builders
from tests.conftest import tiny_finetune_config

NAMES = {0: "background", 1: "Anterior", 2: "Posterior"}
ACDC_NAMES = ("RV", "MYO", "LV")


def _make_dataset(root: Path, n_cases: int = 6) -> Path:
    """nnU-Net raw layout with two foreground labels, neither of them cardiac."""
    for sub in ("imagesTr", "labelsTr"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for c in range(1, n_cases + 1):
        image, label = builders.make_volume(c)
        label = np.where(label == 1, 1, np.where(label >= 2, 2, 0)).astype(np.uint8)
        cid = f"case_{c:03d}"
        affine = builders.affine_for()
        write_nifti(
            root / "imagesTr" / f"{cid}_0000.nii.gz", from_slices(image), affine, dtype=np.int16
        )
        write_nifti(root / "labelsTr" / f"{cid}.nii.gz", from_slices(label), affine, dtype=np.uint8)
    spec = {
        "channel_names": {"0": "CT"},
        "labels": {name: value for value, name in NAMES.items()},
        "numTraining": n_cases,
        "file_ending": ".nii.gz",
    }
    (root / "dataset.json").write_text(json.dumps(spec))
    return root


def _no_acdc_name(text: str, where: str) -> None:
    for name in ACDC_NAMES:
        # column and key names are "<metric>_<name>" or "<metric>/<name>"
        for sep in ("_", "/", '"'):
            assert f"{sep}{name}" not in text, f"{name!r} in {where}"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("labels")
    src = _make_dataset(root / "src")
    return prepare_cache(src, root / "cache").path


def test_the_manifest_holds_the_datasets_label_set(cache: Path) -> None:
    labels = SliceCache.open(cache).manifest.label_set
    assert isinstance(labels, LabelSet)
    assert dict(labels.names) == NAMES
    assert labels.foreground_names == ("Anterior", "Posterior")
    assert not labels.cardiac


def test_finetune_and_evaluate_name_the_datasets_structures(cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    finetune(tiny_finetune_config(cache, out), progress=False)
    run = RunDir(out)
    curve = run.read_curve()
    assert {"slice_iou/Anterior", "slice_iou/Posterior"} <= set(curve)
    assert not any(k.endswith(ACDC_NAMES) for k in curve), sorted(curve)

    metrics = evaluate(out, overlays=0)
    for family in ("slice_iou", "dice_3d"):
        assert set(metrics[family]) - {"mean"} == {"Anterior", "Posterior"}, metrics[family]
    for phase in metrics["by_phase"].values():
        assert set(phase) >= {"Anterior", "Posterior"}
        assert not set(phase) & set(ACDC_NAMES)
    # no cardiac clinical index, and no clinical table
    assert not [k for k in metrics if k.startswith("clinical")], sorted(metrics)
    assert not run.clinical_file.exists()
    # per-label volumes in ml instead, for prediction and reference
    text = run.per_case_file.read_text()
    header = text.splitlines()[0].split(",")
    for name in ("Anterior", "Posterior"):
        for key in ("pred", "ref", "abs_error"):
            assert f"{name}_volume_ml_{key}" in header, header
    assert set(metrics["volume_ml_mean_abs_error"]) == {"Anterior", "Posterior"}
    assert not [c for c in header if "EDV" in c or "EF" in c], header
    _no_acdc_name(text, "per_case.csv")
    _no_acdc_name(run.metrics_file.read_text(), "metrics.json")


def test_the_study_table_names_the_datasets_structures(cache: Path, tmp_path: Path) -> None:
    from tests.experiments.test_study import TINY_FINETUNE_SET

    study = parse_study(
        {
            "name": "labels",
            "data": str(cache),
            "domain": "labels",
            "pipelines": ["random"],
            "budgets": {"kind": "slices", "values": [4]},
            "seeds": [0],
            "finetune": {"preset": "paper", "set": TINY_FINETUNE_SET},
        }
    )
    out = tmp_path / "study"
    status = run_study(study, out, progress=False)
    assert status.failed == 0, status
    results, curves = collect(out)
    assert len(curves) > 0 and set(curves["run_id"]) == set(results["run_id"])
    cols = set(results.columns)
    for name in ("Anterior", "Posterior"):
        assert {f"test_dice_3d_{name}", f"test_slice_iou_{name}", f"test_hd95_{name}"} <= cols
    assert not [c for c in cols if c.endswith(ACDC_NAMES)], sorted(cols)
    assert np.isfinite(results[["test_dice_3d_Anterior", "test_dice_3d_Posterior"]]).all().all()
    # the report's per-structure table names them too
    paths = study_report(out, synthetic=True)
    report = paths[0].read_text()
    assert "Anterior" in report and "Posterior" in report
    _no_acdc_name(report, "report.md")
