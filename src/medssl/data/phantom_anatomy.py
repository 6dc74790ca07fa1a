"""Heart geometry of the synthetic short-axis cine-MRI phantom, as pure functions.

Coordinates are millimetres in the image plane: ``x`` along columns, ``y`` along rows
(pointing down, i.e. posterior); angles are ``atan2(y, x)`` around the LV centre of a
slice, so the RV direction ``pi`` is image-left (the patient's right in radiological
convention). ``z`` is the depth below the LV base along the long axis at end-diastole.
Arrays broadcast as ``(T, Z, H, W)``: contraction ``c`` is ``(T, 1, 1, 1)`` (0 at
end-diastole, 1 at end-systole), slice depth ``z`` is ``(1, Z, 1, 1)`` and angles are
``(1, Z, H, W)``.

LV cavity: a truncated prolate shape ``r(u) = R sqrt(1 - u^a)`` with ``u = depth /
length`` (0 at the base, 1 at the apex), slightly elliptical. Contraction shortens the
long axis (the base descends, the apex stays) and scales the radius so that the cavity
volume follows the design's volume curve; each angular sector of the myocardium keeps
its cross-sectional area per unit length, so the wall thickens in systole and the
myocardial volume is conserved. An infarct is an akinetic, thinned angular sector.
RV cavity: a crescent on the LV epicardium, ``r_epi(θ) < r < r_epi(θ) + H w(θ)`` with a
cosine window ``w``; ``H`` is solved per slice so that the crescent area follows a
base-to-apex area profile that integrates to the design RV volume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Angular samples used to integrate crescent areas.
N_THETA = 720
#: Base-to-apex shape of the RV cross-section, ``1 - s^2``, integrates to this over s in [0, 1].
RV_PROFILE_INTEGRAL = 2.0 / 3.0


@dataclass(frozen=True)
class Infarct:
    """An akinetic, thinned region of the LV wall.

    Attributes:
        angle: centre direction around the LV centre (rad).
        half_span: half angular width (rad).
        start_level: normalised long-axis level where it begins (0 base, 1 apex);
            it extends to the apex.
        thinning: fraction of the wall thickness lost at its centre.
    """

    angle: float
    half_span: float
    start_level: float
    thinning: float


@dataclass(frozen=True)
class HeartDesign:
    """Design of one heart: target volumes and shape parameters.

    Attributes:
        lv_edv_ml, lv_ef: LV end-diastolic volume and ejection fraction (%) of the
            contracting myocardium (an infarct lowers the measured EF further).
        rv_edv_ml, rv_ef: RV end-diastolic volume and ejection fraction (%).
        wall_mm: mid-ventricular LV wall thickness at end-diastole.
        long_axis_mm: LV cavity length (base to apex) at end-diastole.
        profile_exp: exponent ``a`` of the cavity profile ``sqrt(1 - u^a)``.
        apex_wall_ratio: wall thickness at the apex relative to ``wall_mm``.
        septal_gain: relative extra thickness of the septum (asymmetric HCM).
        ellipticity, ellipse_angle: second-harmonic deformation of the cavity.
        rv_angle: direction of the RV from the LV centre (rad; ``pi`` = image-left).
        rv_half_span, rv_power: half angular span and window exponent of the crescent.
        rv_extent: fraction of the LV length the RV covers from the base.
        rv_wall_mm: RV free-wall thickness.
        long_shortening: fractional long-axis shortening at end-systole.
        papillary_mm: papillary-muscle radius at end-diastole.
        fat_mm: epicardial fat thickness in the atrioventricular grooves.
        trabeculae: number of trabecular ridges around the endocardium.
        infarct: akinetic region, or ``None``.
    """

    lv_edv_ml: float
    lv_ef: float
    rv_edv_ml: float
    rv_ef: float
    wall_mm: float
    long_axis_mm: float
    profile_exp: float = 2.5
    apex_wall_ratio: float = 0.7
    septal_gain: float = 0.05
    ellipticity: float = 0.03
    ellipse_angle: float = 0.0
    rv_angle: float = math.pi + 0.25
    rv_half_span: float = 1.1
    rv_power: float = 0.8
    rv_extent: float = 0.85
    rv_wall_mm: float = 3.0
    long_shortening: float = 0.07
    papillary_mm: float = 3.5
    fat_mm: float = 3.0
    trabeculae: int = 16
    infarct: Infarct | None = None

    @property
    def cavity_radius_mm(self) -> float:
        """Basal cavity radius ``R`` giving ``lv_edv_ml`` (volume ``π R² L a/(a+1)``)."""
        shape_integral = self.profile_exp / (self.profile_exp + 1.0)
        volume_mm3 = self.lv_edv_ml * 1000.0
        return math.sqrt(volume_mm3 / (math.pi * self.long_axis_mm * shape_integral))

    @property
    def apex_cap_mm(self) -> float:
        """Thickness of the myocardial cap beyond the cavity apex."""
        return self.wall_mm * self.apex_wall_ratio


@dataclass(frozen=True)
class HeartRadii:
    """Boundaries of one heart around each slice's LV centre, all ``(T, Z, ...)``.

    Attributes:
        endo: LV endocardial radius (0 where there is no cavity).
        epi: LV epicardial radius (0 where there is no heart).
        rv_outer: outer radius of the RV cavity (equals ``epi`` outside the crescent).
        rv_wall: outer radius of the RV free wall.
        outer: outer radius of the heart including epicardial fat.
    """

    endo: np.ndarray
    epi: np.ndarray
    rv_outer: np.ndarray
    rv_wall: np.ndarray
    outer: np.ndarray


def wrap_angle(angle: np.ndarray | float) -> np.ndarray:
    """Map angles to ``[-π, π)``."""
    return (np.asarray(angle) + math.pi) % (2.0 * math.pi) - math.pi


def angular_window(delta: np.ndarray, half_span: float, power: float) -> np.ndarray:
    """Cosine window ``cos(π/2 · |δ|/half)^power``: 1 at ``δ = 0``, 0 beyond ``half_span``."""
    x = np.clip(np.abs(wrap_angle(delta)) / half_span, 0.0, 1.0)
    return np.cos(0.5 * math.pi * x) ** power


def soft_inside(distance: np.ndarray, width: float) -> np.ndarray:
    """Partial-volume occupancy of a voxel whose centre lies ``distance`` mm outside a boundary.

    A linear ramp over ``width`` mm (about one voxel): 0.5 on the boundary, so that
    ``soft_inside(d) > 0.5`` exactly where the hard label says inside (``d < 0``).
    """
    return np.clip(0.5 - distance / width, 0.0, 1.0)


def contraction_curve(n_frames: int, es_index: int) -> np.ndarray:
    """Contraction state per frame: 0 at end-diastole (frame 0), 1 at end-systole.

    Systole is a half cosine from frame 0 to ``es_index``; diastole a faster-filling
    half cosine back towards 0 over the remaining frames (the cycle is periodic).

    Returns:
        ``(n_frames,)`` float64 in ``[0, 1]``.
    """
    t = np.arange(n_frames, dtype=np.float64)
    systole = 0.5 * (1.0 - np.cos(math.pi * t / es_index))
    rest = np.clip((t - es_index) / (n_frames - es_index), 0.0, 1.0)
    diastole = 0.5 * (1.0 + np.cos(math.pi * rest**0.7))
    return np.where(t <= es_index, systole, diastole)


def cavity_length(design: HeartDesign, c: np.ndarray) -> np.ndarray:
    """LV cavity length (mm) at contraction ``c``; the apex is fixed, the base descends."""
    return design.long_axis_mm * (1.0 - design.long_shortening * c)


def long_axis_level(design: HeartDesign, z: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Normalised level ``u`` of depth ``z`` (0 at the moving base, 1 at the apex)."""
    length = cavity_length(design, c)
    return (z - (design.long_axis_mm - length)) / length


def _cavity_shape(design: HeartDesign, theta: np.ndarray) -> np.ndarray:
    return 1.0 + design.ellipticity * np.cos(2.0 * (theta - design.ellipse_angle))


def _wall_thickness(design: HeartDesign, theta: np.ndarray, level: np.ndarray) -> np.ndarray:
    taper = 1.0 - (1.0 - design.apex_wall_ratio) * level
    septum = 1.0 + design.septal_gain * angular_window(theta - design.rv_angle, 1.2, 1.0)
    wall = design.wall_mm * taper * septum
    if design.infarct is not None:
        wall = wall * (1.0 - design.infarct.thinning * _infarct_weight(design, theta, level))
    return wall


def _infarct_weight(design: HeartDesign, theta: np.ndarray, level: np.ndarray) -> np.ndarray:
    """1 inside the akinetic region, 0 outside, smooth in angle and level."""
    inf = design.infarct
    if inf is None:
        return np.zeros(np.broadcast_shapes(np.shape(theta), np.shape(level)))
    angular = angular_window(theta - inf.angle, inf.half_span, 0.6)
    longitudinal = np.clip((level - inf.start_level) / 0.2, 0.0, 1.0)
    return angular * longitudinal


def lv_radial_scale(design: HeartDesign, c: np.ndarray) -> np.ndarray:
    """Cavity radius relative to end-diastole so that the volume follows the design curve."""
    volume_ratio = 1.0 - c * design.lv_ef / 100.0
    return np.sqrt(volume_ratio * design.long_axis_mm / cavity_length(design, c))


def lv_radii(
    design: HeartDesign, theta: np.ndarray, z: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Endocardial and epicardial radii (mm) at angle ``theta``, depth ``z``, contraction ``c``.

    Returns:
        ``(endo, epi)`` broadcast to the common shape; both 0 above the base, ``endo``
        0 in the apical cap.
    """
    length = cavity_length(design, c)
    level = long_axis_level(design, z, c)
    clipped = np.clip(level, 0.0, 1.0)
    profile = np.sqrt(np.clip(1.0 - clipped**design.profile_exp, 0.0, None))
    endo_ed = design.cavity_radius_mm * profile * _cavity_shape(design, theta)
    wall = _wall_thickness(design, theta, clipped)
    scale = lv_radial_scale(design, c)
    akinetic = _infarct_weight(design, theta, clipped)
    endo = endo_ed * (scale + akinetic * (1.0 - scale))
    stretch = design.long_axis_mm / length
    epi = np.sqrt(endo**2 + (2.0 * endo_ed * wall + wall**2) * stretch)
    depth = np.clip((z - design.long_axis_mm) / design.apex_cap_mm, 0.0, None)
    cap = wall * np.sqrt(np.clip(1.0 - depth**2, 0.0, None) * stretch)
    beyond = level >= 1.0
    above = level < 0.0
    endo = np.where(beyond | above, 0.0, endo)
    epi = np.where(above, 0.0, np.where(beyond, cap, epi))
    return endo, epi


def rv_area_mm2(design: HeartDesign, z: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Target RV cavity cross-section (mm²): ``A0 (1 - (u/extent)²)`` from the base."""
    length = cavity_length(design, c)
    volume_mm3 = 1000.0 * design.rv_edv_ml * (1.0 - c * design.rv_ef / 100.0)
    basal_area = volume_mm3 / (length * design.rv_extent * RV_PROFILE_INTEGRAL)
    s = long_axis_level(design, z, c) / design.rv_extent
    return basal_area * np.where(s >= 0.0, np.clip(1.0 - s**2, 0.0, None), 0.0)


def rv_height(design: HeartDesign, z: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Crescent height ``H`` (mm) per frame and slice, solving ``area(H) = target``.

    The crescent ``epi(θ) < r < epi(θ) + H w(θ)`` has area
    ``∫ (epi w H + w² H² / 2) dθ``, a quadratic in ``H``.

    Returns:
        ``H`` with shape ``broadcast(z, c)`` (trailing singleton axes kept).
    """
    step = 2.0 * math.pi / N_THETA
    theta = -math.pi + step * np.arange(N_THETA)
    window = angular_window(theta - design.rv_angle, design.rv_half_span, design.rv_power)
    _, epi = lv_radii(design, theta, z, c)
    linear = np.sum(epi * window, axis=-1, keepdims=True) * step
    quadratic = 0.5 * float(np.sum(window**2)) * step
    area = rv_area_mm2(design, z, c)
    return 2.0 * area / (linear + np.sqrt(linear**2 + 4.0 * quadratic * area) + 1e-12)


def heart_radii(
    design: HeartDesign, theta: np.ndarray, z: np.ndarray, c: np.ndarray, height: np.ndarray
) -> HeartRadii:
    """All boundaries at angles ``theta`` given the crescent heights from :func:`rv_height`."""
    endo, epi = lv_radii(design, theta, z, c)
    delta = theta - design.rv_angle
    rv_outer = epi + height * angular_window(delta, design.rv_half_span, design.rv_power)
    wall_window = angular_window(delta, design.rv_half_span * 1.12, 0.35)
    rv_wall = rv_outer + design.rv_wall_mm * wall_window * np.clip(height / 4.0, 0.0, 1.0)
    grooves = np.maximum(
        angular_window(delta - design.rv_half_span, 0.6, 1.0),
        angular_window(delta + design.rv_half_span, 0.6, 1.0),
    )
    fat = design.fat_mm * (0.25 + 0.75 * grooves) * np.clip(epi / 5.0, 0.0, 1.0)
    outer = np.maximum(epi, rv_wall) + fat
    return HeartRadii(endo=endo, epi=epi, rv_outer=rv_outer, rv_wall=rv_wall, outer=outer)


def heart_labels(radii: HeartRadii, r: np.ndarray) -> np.ndarray:
    """ACDC labels from radii and the radius ``r`` of each voxel centre.

    Returns:
        uint8 map: 0 background, 1 RV cavity, 2 LV myocardium, 3 LV cavity
        (papillary muscles and trabeculae count as cavity, as in ACDC).
    """
    label = np.zeros(np.broadcast_shapes(r.shape, radii.epi.shape), dtype=np.uint8)
    label[(r < radii.rv_outer) & (r >= radii.epi)] = 1
    label[(r < radii.epi) & (r >= radii.endo)] = 2
    label[r < radii.endo] = 3
    return label
