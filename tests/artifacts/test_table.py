"""The study table's schema: rows flatten to the columns the report reads."""

from __future__ import annotations

import math

import pytest

from medssl.artifacts.labels import ACDC_LABELS, LabelSet
from medssl.artifacts.table import (
    CURVE_COLUMNS,
    PER_LABEL_METRICS,
    RESULT_COLUMNS,
    CurveRow,
    StudyRow,
    check_results,
    label_column,
    label_columns,
    structure_names,
)


def _row(**extra) -> StudyRow:
    base = dict(
        run_id="r",
        study="main",
        pipeline="random",
        budget_kind="slices",
        budget=3,
        labelled_slices=3,
        seed=0,
        pretrain_epoch=math.nan,
        steps=10,
        best_val_iou=0.5,
        final_val_iou=0.4,
        steps_to_95=8.0,
        curve_auc=0.3,
        test_slice_iou_mean=0.45,
        test_jaccard_loss=0.55,
        test_dice_3d_mean=0.6,
        distance_units="mm",
        run_dir="/x",
    )
    return StudyRow(**{**base, **extra})


def test_per_label_columns_are_named_from_the_label_set() -> None:
    labels = LabelSet({0: "background", 1: "Anterior", 2: "Posterior"})
    per_label = {
        n: {m: float(i) for i, m in enumerate(PER_LABEL_METRICS)} for n in ("Anterior", "Posterior")
    }
    row = _row(per_label=per_label).to_dict()
    assert set(label_columns(labels)) <= set(row)
    assert row["test_dice_3d_Posterior"] == float(PER_LABEL_METRICS.index("dice_3d"))
    assert set(RESULT_COLUMNS) <= set(row)
    assert not [c for c in row if c.endswith(("RV", "MYO", "LV"))]
    assert structure_names(row) == ("Anterior", "Posterior")


def test_label_columns_and_structure_names_are_inverse() -> None:
    cols = label_columns(ACDC_LABELS)
    assert len(cols) == len(PER_LABEL_METRICS) * 3
    assert structure_names(["test_dice_3d_mean", *cols]) == ACDC_LABELS.foreground_names
    with pytest.raises(ValueError, match="unknown per-label metric"):
        label_column("volume", "LV")


def test_study_metrics_are_columns_only_when_known() -> None:
    assert "paper_iou" not in _row().to_dict()
    row = _row(paper_iou=0.7, paper_jaccard_loss=0.2).to_dict()
    assert row["paper_iou"] == 0.7 and row["paper_jaccard_loss"] == 0.2


def test_a_missing_column_is_a_one_line_error_naming_the_table() -> None:
    cols = [c for c in RESULT_COLUMNS if c != "curve_auc"]
    with pytest.raises(ValueError, match=r"results\.csv: .*missing curve_auc") as err:
        check_results(cols, "results.csv")
    assert "\n" not in str(err.value)
    check_results(RESULT_COLUMNS, "results.csv")


def test_curve_rows_have_the_curve_columns() -> None:
    row = CurveRow("r", "main", "random", 3, 0, math.nan, 4, 0.5, 0.4).to_dict()
    assert tuple(row) == CURVE_COLUMNS
