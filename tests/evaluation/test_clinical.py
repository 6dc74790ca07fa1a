"""Clinical indices on box-shaped hearts of known voxel counts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medssl.artifacts.labels import LabelSet
from medssl.evaluation.clinical import (
    clinical_indices,
    ejection_fraction,
    index_errors,
    voxel_volume_ml,
)

SPACING = (10.0, 1.5, 1.5)  # 22.5 mm³ = 0.0225 ml per voxel


def _heart(lv_rows: int, rv_rows: int, myo: bool) -> np.ndarray:
    """LV box 4 slices x lv_rows x 10, RV box 1 x rv_rows x 10, MYO box 2 x 10 x 10."""
    vol = np.zeros((8, 40, 40), dtype=np.uint8)
    vol[0:4, 0:lv_rows, 0:10] = 3
    vol[0, 20 : 20 + rv_rows, 0:10] = 1
    if myo:
        vol[5:7, 0:10, 20:30] = 2
    return vol


def test_box_heart_exact_indices() -> None:
    ed = _heart(lv_rows=10, rv_rows=10, myo=True)  # LV 400, RV 100, MYO 200 voxels
    es = _heart(lv_rows=5, rv_rows=7, myo=False)  # LV 200, RV 70 voxels
    out = clinical_indices(ed, es, SPACING)
    assert voxel_volume_ml(SPACING) == pytest.approx(0.0225)
    assert out["LV_EDV"] == pytest.approx(9.0)
    assert out["LV_ESV"] == pytest.approx(4.5)
    assert out["LV_EF"] == pytest.approx(50.0)
    assert out["RV_EDV"] == pytest.approx(2.25)
    assert out["RV_ESV"] == pytest.approx(1.575)
    assert out["RV_EF"] == pytest.approx(30.0)
    assert out["MYO_mass"] == pytest.approx(200 * 0.0225 * 1.05)  # ED myocardium only
    assert set(out) == {"LV_EDV", "LV_ESV", "LV_EF", "RV_EDV", "RV_ESV", "RV_EF", "MYO_mass"}


def test_identical_phases_give_zero_ef() -> None:
    ed = _heart(lv_rows=10, rv_rows=10, myo=True)
    out = clinical_indices(ed, ed.copy(), SPACING)
    assert out["LV_EF"] == 0.0 and out["RV_EF"] == 0.0


def test_spacing_none_raises() -> None:
    ed = _heart(lv_rows=10, rv_rows=10, myo=True)
    with pytest.raises(ValueError, match="spacing"):
        clinical_indices(ed, ed, None)


def test_custom_labels_and_empty_ventricle() -> None:
    ed = _heart(lv_rows=10, rv_rows=10, myo=True)
    swapped = LabelSet.from_names({1: "LV", 2: "MYO", 3: "RV"})
    out = clinical_indices(ed, ed, SPACING, labels=swapped)
    assert out["LV_EDV"] == pytest.approx(2.25) and out["RV_EDV"] == pytest.approx(9.0)
    assert math.isnan(ejection_fraction(0.0, 0.0))
    with pytest.raises(ValueError, match="labels"):
        clinical_indices(ed, ed, SPACING, labels=LabelSet.from_names({3: "LV"}))


def test_index_errors_signed_and_absolute() -> None:
    errors = index_errors({"LV_EF": 55.0, "LV_EDV": 100.0}, {"LV_EF": 60.0, "LV_EDV": 90.0})
    assert errors == {
        "LV_EF_error": -5.0,
        "LV_EF_abs_error": 5.0,
        "LV_EDV_error": 10.0,
        "LV_EDV_abs_error": 10.0,
    }
    with pytest.raises(ValueError, match="differ"):
        index_errors({"LV_EF": 1.0}, {"RV_EF": 1.0})
