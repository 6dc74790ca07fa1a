"""Pure per-volume preprocessing: intensity normalisation and optional in-plane resampling.

Normalisation (per 3D volume, i.e. per cine frame):
1. clip intensities to the volume's ``[p_low, p_high]`` percentiles (default 0.5 and
   99.5), which removes the bright outliers that MRI magnitude images carry;
2. ``zscore``: subtract the clipped volume's mean and divide by its standard
   deviation; ``minmax``: map the clipped range onto ``[0, 1]``.
The statistics are returned so that they are stored with the cache.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class PrepareConfig:
    """How a source is turned into a cache; saved in the cache's manifest.

    Attributes:
        norm: ``"zscore"`` or ``"minmax"`` (see module docstring).
        clip_percentiles: lower and upper clipping percentiles.
        dtype: storage type of normalised images (``float16`` halves the size; its
            ~3 significant digits are far below MRI noise).
        target_spacing: resample every slice in-plane to this spacing in mm
            (bilinear images, nearest labels); ``None`` keeps the native grid.
        include_series: also store every frame of 4D cine series (the pretraining pool).
    """

    norm: Literal["zscore", "minmax"] = "zscore"
    clip_percentiles: tuple[float, float] = (0.5, 99.5)
    dtype: Literal["float16", "float32"] = "float16"
    target_spacing: float | None = None
    include_series: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PrepareConfig:
        d = dict(d)
        d["clip_percentiles"] = tuple(d["clip_percentiles"])
        return cls(**d)


@dataclass(frozen=True)
class NormStats:
    """Per-volume normalisation statistics (in source intensity units)."""

    low: float
    high: float
    mean: float
    std: float


def normalize_volume(
    image: np.ndarray, norm: str = "zscore", clip_percentiles: tuple[float, float] = (0.5, 99.5)
) -> tuple[np.ndarray, NormStats]:
    """Normalise one volume.

    Args:
        image: ``(S, H, W)`` intensities.
        norm: ``"zscore"`` or ``"minmax"``.
        clip_percentiles: clipping percentiles.

    Returns:
        ``(normalised float32 volume, statistics)``. A constant volume maps to zeros.
    """
    low, high = (float(v) for v in np.percentile(image, clip_percentiles))
    clipped = np.clip(image.astype(np.float32, copy=False), low, high)
    mean, std = float(clipped.mean()), float(clipped.std())
    if norm == "zscore":
        out = (clipped - mean) / std if std > 0 else np.zeros_like(clipped)
    elif norm == "minmax":
        out = (clipped - low) / (high - low) if high > low else np.zeros_like(clipped)
    else:
        raise ValueError(f"unknown normalisation {norm!r}")
    return out.astype(np.float32, copy=False), NormStats(low, high, mean, std)


def resample_inplane(
    image: np.ndarray,
    label: np.ndarray | None,
    spacing: tuple[float, float, float],
    target: float,
) -> tuple[np.ndarray, np.ndarray | None, tuple[float, float, float]]:
    """Resample ``(S, H, W)`` slices to an isotropic in-plane ``target`` spacing.

    Images use antialiased bilinear interpolation, labels nearest neighbour, so
    label values are never blended. Returns the new image, label and spacing.
    """
    _, h, w = image.shape
    new_h = max(1, round(h * spacing[1] / target))
    new_w = max(1, round(w * spacing[2] / target))
    img_t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[:, None]
    out = F.interpolate(
        img_t, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False
    )[:, 0].numpy()
    out_label = None
    if label is not None:
        lab_t = torch.from_numpy(np.ascontiguousarray(label))[:, None].float()
        out_label = F.interpolate(lab_t, size=(new_h, new_w), mode="nearest-exact")[:, 0]
        out_label = out_label.numpy().astype(np.uint8)
    return out, out_label, (spacing[0], h * spacing[1] / new_h, w * spacing[2] / new_w)
