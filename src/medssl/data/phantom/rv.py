"""Right ventricle and whole-heart boundaries, labels and extent of the phantom.

Conventions as in :mod:`medssl.data.phantom.heart`. The RV cavity is the part of an
ellipse, overlapping the LV on the septal side, that lies outside the LV epicardium;
the ellipse size is solved per slice so that the cavity area follows a base-to-apex
profile integrating to the design volume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from medssl.artifacts.labels import ACDC_LABELS, LabelSet
from medssl.data.phantom.geometry import ellipse_distance
from medssl.data.phantom.heart import (
    AngularProfile,
    HeartDesign,
    angular_profile,
    cavity_length,
    lv_radii,
)

#: Angular samples used to integrate crescent areas.
N_THETA = 180
#: Distance (mm) standing for "no such structure on this slice".
NO_HEART_MM = 1e3
#: Base-to-apex shape of the RV cross-section, ``1 - s^2``, integrates to this over s in [0, 1].
RV_PROFILE_INTEGRAL = 2.0 / 3.0


@dataclass(frozen=True)
class HeartRadii:
    """Boundaries of one heart at a set of voxels, all broadcast to ``(Z, h, w)``.

    Attributes:
        endo: LV endocardial radius along each voxel's direction (0 without cavity).
        epi: LV epicardial radius (0 where there is no heart).
        rv: signed distance (mm, negative inside) to the RV cavity ellipse; the RV
            cavity is the part of the ellipse outside the LV epicardium.
        rv_wall: RV free-wall thickness (0 where the RV has ended).
        fat: epicardial fat thickness.
    """

    endo: np.ndarray
    epi: np.ndarray
    rv: np.ndarray
    rv_wall: np.ndarray
    fat: np.ndarray

    def outline_distance(self, r: np.ndarray) -> np.ndarray:
        """Approximate signed distance (mm) to the heart's outline, epicardial fat included."""
        lv = np.where(self.epi > 0.0, r - self.epi - self.fat, NO_HEART_MM)
        return np.minimum(lv, self.rv - self.rv_wall - 0.5 * self.fat)


def rv_area_mm2(design: HeartDesign, z: np.ndarray, c: np.ndarray | float) -> np.ndarray:
    """Target RV cavity cross-section (mm²), ``A0 (1 - s²)`` from the moving base (s = 0)
    to a fixed RV apex (s = 1) at ``rv_extent`` of the end-diastolic LV length."""
    base = design.long_axis_mm - cavity_length(design, c)
    length = design.long_axis_mm * design.rv_extent - base
    volume_mm3 = 1000.0 * design.rv_edv_ml * (1.0 - c * design.rv_ef / 100.0)
    basal_area = volume_mm3 / (length * RV_PROFILE_INTEGRAL)
    s = (z - base) / length
    return basal_area * np.where(s >= 0.0, np.clip(1.0 - s**2, 0.0, None), 0.0)


def ray_ellipse(
    angles: AngularProfile, offset: np.ndarray, depth: np.ndarray, aspect: float
) -> tuple[np.ndarray, np.ndarray]:
    """Distances at which rays from the LV centre enter and leave an ellipse.

    The ellipse has semi-axes ``depth`` along the RV direction and ``aspect · depth``
    across it, and its centre lies ``offset`` mm from the LV centre in the RV direction.
    Solves ``(t cos δ - D)²/b² + (t sin δ)²/a² = 1`` for ``t``.

    Returns:
        ``(near, far)``; both 0 where the ray misses the ellipse.
    """
    b = np.maximum(depth, 1e-3)
    a = np.maximum(aspect * b, 1e-3)
    quad = (angles.rv_cos / b) ** 2 + (angles.rv_sin / a) ** 2
    half_lin = -offset * angles.rv_cos / b**2
    const = (offset / b) ** 2 - 1.0
    disc = half_lin**2 - quad * const
    hit = (disc > 0.0) & (depth > 0.0)
    root = np.sqrt(np.where(hit, disc, 0.0))
    near = np.where(hit, np.maximum((-half_lin - root) / quad, 0.0), 0.0)
    far = np.where(hit, np.maximum((-half_lin + root) / quad, 0.0), 0.0)
    return near, far


def _rv_offset(design: HeartDesign, epi: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Centre offset of the RV ellipse: its inner edge reaches into the LV."""
    reference = np.mean(epi, axis=-1, keepdims=True)
    return (1.0 - design.rv_overlap) * reference + depth


def rv_ellipse(
    design: HeartDesign, z: np.ndarray, c: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """Depth semi-axis and centre offset (mm) of the RV ellipse per slice.

    The cavity (ellipse minus LV) has area ``∫ ½ (far² - max(near, epi)²)₊ dθ``, which
    grows with the ellipse size; the depth is solved by bisection so that the area
    matches :func:`rv_area_mm2`.

    Returns:
        ``(depth, offset)``, each ``(Z, 1, 1)``; depth is 0 where the RV has ended.
    """
    step = 2.0 * math.pi / N_THETA
    angles = angular_profile(design, -math.pi + step * np.arange(N_THETA))
    _, epi = lv_radii(design, angles, z, c)
    target = rv_area_mm2(design, z, c)
    low, high = np.zeros_like(target), np.full_like(target, 120.0)
    for _ in range(14):
        mid = 0.5 * (low + high)
        near, far = ray_ellipse(angles, _rv_offset(design, epi, mid), mid, design.rv_aspect)
        inner = np.maximum(near, epi)
        area = 0.5 * step * np.sum(np.clip(far**2 - inner**2, 0.0, None), axis=-1, keepdims=True)
        low, high = np.where(area < target, mid, low), np.where(area < target, high, mid)
    depth = np.where(target > 0.0, 0.5 * (low + high), 0.0)
    return depth, _rv_offset(design, epi, depth)


def heart_bounds(design: HeartDesign, z: np.ndarray) -> np.ndarray:
    """Bounding box of the end-diastolic heart (its largest state) around each LV centre.

    Returns:
        ``(Z, 4)`` offsets ``(x_min, x_max, y_min, y_max)`` in mm, fat and RV wall included.
    """
    step = 2.0 * math.pi / N_THETA
    theta = -math.pi + step * np.arange(N_THETA)
    z = np.asarray(z, dtype=np.float64).reshape(-1, 1, 1)
    _, epi = lv_radii(design, angular_profile(design, theta), z, 0.0)
    lv = epi.max(axis=-1).reshape(-1) + design.fat_mm
    depth, offset = (v.reshape(-1) for v in rv_ellipse(design, z, 0.0))
    cos, sin = math.cos(design.rv_angle), math.sin(design.rv_angle)
    grow = np.where(depth > 0.0, design.rv_wall_mm + design.fat_mm, 0.0)
    along, across = depth + grow, design.rv_aspect * depth + grow
    half_x = np.hypot(along * cos, across * sin)
    half_y = np.hypot(along * sin, across * cos)
    cx, cy = offset * cos, offset * sin
    return np.stack(
        [
            np.minimum(-lv, cx - half_x),
            np.maximum(lv, cx + half_x),
            np.minimum(-lv, cy - half_y),
            np.maximum(lv, cy + half_y),
        ],
        axis=1,
    )


def heart_radii(
    design: HeartDesign,
    angles: AngularProfile,
    offsets: tuple[np.ndarray, np.ndarray],
    z: np.ndarray,
    c: float,
) -> HeartRadii:
    """All boundaries at voxels with directions ``angles`` and offsets ``(dx, dy)`` (mm)
    from their slice's LV centre, at depths ``z`` ``(Z, 1, 1)`` and contraction ``c``."""
    endo, epi = lv_radii(design, angles, z, c)
    depth, offset = rv_ellipse(design, z, c)
    cos, sin = math.cos(design.rv_angle), math.sin(design.rv_angle)
    axes = (np.maximum(depth, 1e-3), np.maximum(design.rv_aspect * depth, 1e-3))
    dist = ellipse_distance(
        offsets[0] - offset * cos, offsets[1] - offset * sin, axes, design.rv_angle
    )
    rv = np.where(depth > 0.0, dist, NO_HEART_MM)
    wall = np.where(depth > 0.0, design.rv_wall_mm, 0.0)
    fat = design.fat_mm * angles.grooves * np.clip(epi / 5.0, 0.0, 1.0)
    return HeartRadii(endo=endo, epi=epi, rv=rv, rv_wall=wall, fat=fat)


def heart_labels(radii: HeartRadii, r: np.ndarray, labels: LabelSet = ACDC_LABELS) -> np.ndarray:
    """Label map from radii and the radius ``r`` of each voxel centre.

    Args:
        labels: a cardiac label set; its roles give the values written (ACDC's: 1 RV
            cavity, 2 LV myocardium, 3 LV cavity).

    Returns:
        uint8 map, 0 background (papillary muscles and trabeculae count as cavity, as
        in ACDC).
    """
    if not labels.cardiac:
        raise ValueError(f"the phantom needs a cardiac label set, got {dict(labels.names)}")
    roles = labels.roles
    label = np.zeros(np.broadcast_shapes(r.shape, radii.epi.shape), dtype=np.uint8)
    label[(radii.rv < 0.0) & (r >= radii.epi)] = roles["rv_cavity"]
    label[(r < radii.epi) & (r >= radii.endo)] = roles["lv_myocardium"]
    label[r < radii.endo] = roles["lv_cavity"]
    return label
