"""Volumes and cardiac clinical indices from label maps (ACDC conventions), pure maths.

Volumes are voxel counts times the voxel volume (``Π spacing`` in mm³, /1000 for ml);
ejection fraction is ``(EDV − ESV) / EDV · 100``; myocardial mass is the ED myocardium
volume times 1.05 g/ml. These are the indices of the ACDC challenge (Bernard et al.,
IEEE TMI 2018). The structures come from the label set's roles
(:data:`~medssl.artifacts.labels.CARDIAC_ROLES`), never from fixed values, so a dataset
whose labels are not cardiac gets per-label volumes only (:func:`label_volumes_ml`).

Used by the phantom (to count its truth on the label maps it writes) and by
:mod:`medssl.evaluation` (to score predictions), so both compute the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medssl.artifacts.labels import ACDC_LABELS, CARDIAC_ROLES, LabelSet

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


def check_spacing(spacing: Sequence[float] | None, ndim: int) -> tuple[float, ...] | None:
    """Validate a voxel spacing: ``ndim`` positive finite values in the array's axis order."""
    if spacing is None:
        return None
    out = tuple(float(s) for s in spacing)
    if len(out) != ndim or not all(np.isfinite(s) and s > 0 for s in out):
        raise ValueError(f"spacing must be {ndim} positive finite values, got {spacing}")
    return out


def voxel_volume_ml(spacing: Sequence[float]) -> float:
    """Volume of one voxel in ml from its ``(slice, row, col)`` size in mm."""
    sp = check_spacing(spacing, 3)
    if sp is None:
        raise ValueError("volumes in ml need the voxel spacing in mm; got spacing=None")
    return float(np.prod(sp)) / 1000.0


def structure_volume_ml(label: np.ndarray, value: int, spacing: Sequence[float]) -> float:
    """Volume in ml of the voxels of ``label`` (``(S, H, W)``) equal to ``value``."""
    return int(np.count_nonzero(np.asarray(label) == value)) * voxel_volume_ml(spacing)


def label_volumes_ml(
    label: np.ndarray, spacing: Sequence[float], labels: LabelSet
) -> dict[str, float]:
    """``{name: volume in ml}`` of every foreground label of ``labels`` in ``label``."""
    return {labels.name(v): structure_volume_ml(label, v, spacing) for v in labels.foreground}


def ejection_fraction(edv: float, esv: float) -> float:
    """``(EDV − ESV) / EDV · 100`` in %; ``NaN`` when ``EDV`` is 0."""
    return (edv - esv) / edv * 100.0 if edv > 0 else float("nan")


def clinical_indices(
    ed_label: np.ndarray,
    es_label: np.ndarray,
    spacing: Sequence[float] | None,
    labels: LabelSet = ACDC_LABELS,
    myo_density: float = MYOCARDIUM_DENSITY_G_PER_ML,
) -> dict[str, float]:
    """LV/RV volumes and ejection fractions and LV myocardial mass of one patient.

    Args:
        ed_label: ``(S, H, W)`` integer label map at end-diastole.
        es_label: ``(S, H, W)`` integer label map at end-systole (same spacing).
        spacing: ``(slice, row, col)`` voxel size in mm; required.
        labels: the label set; its roles ``lv_cavity``, ``lv_myocardium`` and
            ``rv_cavity`` say which values are measured.
        myo_density: myocardial density in g/ml.

    Returns:
        ``{"LV_EDV", "LV_ESV", "RV_EDV", "RV_ESV"}`` in ml, ``{"LV_EF", "RV_EF"}`` in %
        (``NaN`` when the EDV is 0) and ``"MYO_mass"`` in g at ED.

    Raises:
        ValueError: when ``spacing`` is ``None`` (indices need millimetres), a label
            map is not 3D or the label set lacks a cardiac role.
    """
    if spacing is None:
        raise ValueError("clinical indices need the voxel spacing in mm; got spacing=None")
    for name, arr in (("ed_label", ed_label), ("es_label", es_label)):
        if np.ndim(arr) != 3:
            raise ValueError(f"{name} must be (S, H, W), got shape {np.shape(arr)}")
    missing = [r for r in CARDIAC_ROLES if r not in labels.roles]
    if missing:
        raise ValueError(f"labels lack the {', '.join(missing)} role(s); no cardiac indices")
    roles = labels.roles
    lv_edv = structure_volume_ml(ed_label, roles["lv_cavity"], spacing)
    lv_esv = structure_volume_ml(es_label, roles["lv_cavity"], spacing)
    rv_edv = structure_volume_ml(ed_label, roles["rv_cavity"], spacing)
    rv_esv = structure_volume_ml(es_label, roles["rv_cavity"], spacing)
    myo_ml = structure_volume_ml(ed_label, roles["lv_myocardium"], spacing)
    out = {
        "LV_EDV": lv_edv,
        "LV_ESV": lv_esv,
        "LV_EF": ejection_fraction(lv_edv, lv_esv),
        "RV_EDV": rv_edv,
        "RV_ESV": rv_esv,
        "RV_EF": ejection_fraction(rv_edv, rv_esv),
        "MYO_mass": myo_ml * myo_density,
    }
    return out
