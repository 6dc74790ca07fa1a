"""Cardiac clinical indices from ED and ES label maps (ACDC conventions).

Volumes are voxel counts times the voxel volume (``Π spacing`` in mm³, /1000 for ml);
ejection fraction is ``(EDV − ESV) / EDV · 100``; myocardial mass is the ED myocardium
volume times 1.05 g/ml. These are the indices of the ACDC challenge (Bernard et al.,
IEEE TMI 2018), which reports them per patient and compares prediction to ground
truth by correlation, bias and limits of agreement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np

from medssl.evaluation.metrics import check_spacing

ACDC_LABELS: Mapping[str, int] = MappingProxyType({"RV": 1, "MYO": 2, "LV": 3})
MYOCARDIUM_DENSITY_G_PER_ML = 1.05
INDEX_KEYS: tuple[str, ...] = (
    "LV_EDV",
    "LV_ESV",
    "LV_EF",
    "RV_EDV",
    "RV_ESV",
    "RV_EF",
    "MYO_mass",
)


def voxel_volume_ml(spacing: Sequence[float]) -> float:
    """Volume of one voxel in ml from its ``(slice, row, col)`` size in mm."""
    sp = check_spacing(spacing, 3)
    if sp is None:
        raise ValueError("volumes in ml need the voxel spacing in mm; got spacing=None")
    return float(np.prod(sp)) / 1000.0


def structure_volume_ml(label: np.ndarray, value: int, spacing: Sequence[float]) -> float:
    """Volume in ml of the voxels of ``label`` (``(S, H, W)``) equal to ``value``."""
    return int(np.count_nonzero(np.asarray(label) == value)) * voxel_volume_ml(spacing)


def ejection_fraction(edv: float, esv: float) -> float:
    """``(EDV − ESV) / EDV · 100`` in %; ``NaN`` when ``EDV`` is 0."""
    return (edv - esv) / edv * 100.0 if edv > 0 else float("nan")


def clinical_indices(
    ed_label: np.ndarray,
    es_label: np.ndarray,
    spacing: Sequence[float] | None,
    labels: Mapping[str, int] = ACDC_LABELS,
    myo_density: float = MYOCARDIUM_DENSITY_G_PER_ML,
) -> dict[str, float]:
    """LV/RV volumes and ejection fractions and LV myocardial mass of one patient.

    Args:
        ed_label: ``(S, H, W)`` integer label map at end-diastole.
        es_label: ``(S, H, W)`` integer label map at end-systole (same spacing).
        spacing: ``(slice, row, col)`` voxel size in mm; required.
        labels: label value of ``"RV"``, ``"MYO"`` and ``"LV"``.
        myo_density: myocardial density in g/ml.

    Returns:
        ``{"LV_EDV", "LV_ESV", "RV_EDV", "RV_ESV"}`` in ml, ``{"LV_EF", "RV_EF"}`` in %
        (``NaN`` when the EDV is 0) and ``"MYO_mass"`` in g at ED.

    Raises:
        ValueError: when ``spacing`` is ``None`` (indices need millimetres), a label
            map is not 3D or a structure is missing from ``labels``.
    """
    if spacing is None:
        raise ValueError("clinical indices need the voxel spacing in mm; got spacing=None")
    for name, arr in (("ed_label", ed_label), ("es_label", es_label)):
        if np.ndim(arr) != 3:
            raise ValueError(f"{name} must be (S, H, W), got shape {np.shape(arr)}")
    missing = {"RV", "MYO", "LV"} - set(labels)
    if missing:
        raise ValueError(f"labels lacks {sorted(missing)}")
    out: dict[str, float] = {}
    for ventricle in ("LV", "RV"):
        edv = structure_volume_ml(ed_label, labels[ventricle], spacing)
        esv = structure_volume_ml(es_label, labels[ventricle], spacing)
        out[f"{ventricle}_EDV"] = edv
        out[f"{ventricle}_ESV"] = esv
        out[f"{ventricle}_EF"] = ejection_fraction(edv, esv)
    out["MYO_mass"] = structure_volume_ml(ed_label, labels["MYO"], spacing) * myo_density
    return out


def index_errors(
    pred_indices: Mapping[str, float], true_indices: Mapping[str, float]
) -> dict[str, float]:
    """Signed and absolute error of each index, prediction minus truth.

    Args:
        pred_indices: indices from predicted label maps (:func:`clinical_indices`).
        true_indices: the same indices from the ground truth; same keys.

    Returns:
        ``{"<index>_error": pred − true, "<index>_abs_error": |pred − true|}`` per index.

    Raises:
        ValueError: when the two mappings have different keys.
    """
    if set(pred_indices) != set(true_indices):
        raise ValueError(f"index keys differ: {sorted(set(pred_indices) ^ set(true_indices))}")
    out: dict[str, float] = {}
    for key in true_indices:
        err = float(pred_indices[key]) - float(true_indices[key])
        out[f"{key}_error"] = err
        out[f"{key}_abs_error"] = abs(err)
    return out
