"""Pure per-volume checks shared by every reader; each raises a one-line DataError."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from medssl.errors import DataError


def check_finite(path: Path, image: np.ndarray) -> None:
    """Refuse NaN or infinite intensities."""
    finite = np.isfinite(image)
    if not finite.all():
        n_nan = int(np.isnan(image).sum())
        n_inf = int(image.size - finite.sum() - n_nan)
        raise DataError(path, "non-finite", f"{n_nan} NaN and {n_inf} infinite intensities")


def check_label_values(path: Path, label: np.ndarray, allowed: Iterable[int]) -> np.ndarray:
    """Check that a label map holds integers of the declared set; return it as uint8.

    Float-typed maps are accepted when every value is integral (many tools save
    labels as float); negative, fractional or undeclared values are refused.
    """
    allowed_set = {int(a) for a in allowed}
    if label.dtype.kind == "f":
        if not np.isfinite(label).all():
            raise DataError(path, "label-values", "label map holds NaN or infinite values")
        if not np.array_equal(label, np.round(label)):
            raise DataError(path, "non-integer-labels", "label map holds fractional values")
    elif label.dtype.kind not in "iub":
        raise DataError(path, "non-integer-labels", f"label dtype {label.dtype} is not integer")
    values = np.unique(label)
    bad = [v for v in values.tolist() if int(v) not in allowed_set or v != int(v)]
    if bad:
        raise DataError(
            path,
            "label-values",
            f"values {bad[:8]} outside the declared set {sorted(allowed_set)}",
        )
    return label.astype(np.uint8, copy=False)


def check_same_shape(path: Path, image_shape: tuple, label_shape: tuple) -> None:
    if tuple(image_shape) != tuple(label_shape):
        raise DataError(path, "shape-mismatch", f"label {label_shape} != image {image_shape}")


def check_same_geometry(
    path: Path,
    zooms_a: tuple[float, ...],
    zooms_b: tuple[float, ...],
    affine_a: np.ndarray,
    affine_b: np.ndarray,
    tol: float = 1e-3,
) -> None:
    """Image and label must share voxel spacing and affine (to ``tol`` mm)."""
    if not np.allclose(zooms_a[:3], zooms_b[:3], rtol=tol, atol=tol):
        raise DataError(path, "spacing-mismatch", f"spacing {zooms_b[:3]} != image {zooms_a[:3]}")
    if not np.allclose(affine_a, affine_b, rtol=tol, atol=tol):
        raise DataError(path, "affine-mismatch", "affine differs from the image's")
