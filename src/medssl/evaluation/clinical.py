"""Cardiac clinical indices: the maths lives in :mod:`medssl.data.clinical` (shared with the
phantom's truth); this module adds the comparison of predicted and true indices.

Indices are those of the ACDC challenge (Bernard et al., IEEE TMI 2018), which reports
them per patient and compares prediction to ground truth by correlation, bias and
limits of agreement.
"""

from __future__ import annotations

from collections.abc import Mapping

from medssl.artifacts.labels import ACDC_LABELS
from medssl.data.clinical import (
    INDEX_KEYS,
    MYOCARDIUM_DENSITY_G_PER_ML,
    clinical_indices,
    ejection_fraction,
    label_volumes_ml,
    structure_volume_ml,
    voxel_volume_ml,
)

__all__ = [
    "ACDC_LABELS",
    "INDEX_KEYS",
    "MYOCARDIUM_DENSITY_G_PER_ML",
    "clinical_indices",
    "ejection_fraction",
    "index_errors",
    "label_volumes_ml",
    "structure_volume_ml",
    "voxel_volume_ml",
]


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
