"""Left-ventricle geometry and contraction of the synthetic short-axis cine-MRI phantom.

Pure functions of their arguments. Coordinates are millimetres in the image plane: ``x``
along columns, ``y`` along rows (pointing down, i.e. posterior); angles are
``atan2(y, x)`` around the LV centre of a slice, so the RV direction ``pi`` is
image-left (the patient's right in radiological convention). ``z`` is the depth below
the end-diastolic LV base along the long axis; arrays are ``(Z, H, W)`` with ``z``
shaped ``(Z, 1, 1)``, and the contraction ``c`` of a frame is a scalar (0 at
end-diastole, 1 at end-systole).

The LV cavity is a truncated prolate shape ``r(u) = R sqrt(1 - u^a)`` with
``u = depth / length`` (0 at the base, 1 at the apex), slightly deformed. Contraction
shortens the long axis (the base descends, the apex stays) and scales the radius so
that the cavity volume follows the design's volume curve; each angular sector of the
myocardium keeps its cross-sectional area per unit length, so the wall thickens in
systole and the myocardial volume is conserved. An infarct is an akinetic, thinned
sector. The right ventricle and the whole heart's boundaries are in
:mod:`medssl.data.phantom.rv`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from medssl.data.phantom.geometry import angular_window


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
        lobes: third-harmonic deformation of the cavity.
        rv_angle: direction of the RV from the LV centre (rad; ``pi`` = image-left).
        rv_half_span: angle of the RV insertion points from ``rv_angle`` (epicardial
            fat collects there).
        rv_aspect: width over depth of the RV ellipse.
        rv_overlap: how far (fraction of the LV epicardial radius) the RV ellipse
            reaches into the LV from its edge; the overlap is the septum.
        rv_extent: position of the (fixed) RV apex as a fraction of the ED LV length.
        rv_wall_mm: RV free-wall thickness.
        long_shortening: fractional long-axis shortening at end-systole.
        papillary_mm: papillary-muscle radius at end-diastole.
        fat_mm: epicardial fat thickness in the atrioventricular grooves.
        fat_angle: direction of a second, smaller epicardial fat pad.
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
    lobes: float = 0.0
    ellipse_angle: float = 0.0
    rv_angle: float = math.pi + 0.25
    rv_half_span: float = 1.1
    rv_aspect: float = 1.5
    rv_overlap: float = 0.45
    rv_extent: float = 0.85
    rv_wall_mm: float = 3.0
    long_shortening: float = 0.07
    papillary_mm: float = 3.5
    fat_mm: float = 3.0
    fat_angle: float = 0.0
    trabeculae: int = 16
    infarct: Infarct | None = None

    @property
    def cavity_radius_mm(self) -> float:
        """Basal cavity radius ``R`` giving ``lv_edv_ml`` (volume ``π R² L a/(a+1)``)."""
        shape_integral = self.profile_exp / (self.profile_exp + 1.0)
        volume_mm3 = self.lv_edv_ml * 1000.0
        return math.sqrt(volume_mm3 / (math.pi * self.long_axis_mm * shape_integral))

    @property
    def infarct_thinning(self) -> float:
        """Fraction of the wall lost at the infarct centre (0 without infarct)."""
        return 0.0 if self.infarct is None else self.infarct.thinning

    @property
    def apex_cap_mm(self) -> float:
        """Thickness of the myocardial cap beyond the cavity apex."""
        return self.wall_mm * self.apex_wall_ratio


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


@dataclass(frozen=True)
class AngularProfile:
    """Angle-only factors of a heart at a set of directions; static over the cycle.

    Attributes:
        cavity: cavity radius factor (second-harmonic ellipticity).
        septum: wall thickness factor (septal hypertrophy).
        infarct: angular weight of the infarct (0 without one).
        rv_cos, rv_sin: cosine and sine of the angle from the RV direction.
        grooves: epicardial fat factor, largest in the atrioventricular grooves.
    """

    cavity: np.ndarray
    septum: np.ndarray
    infarct: np.ndarray
    rv_cos: np.ndarray
    rv_sin: np.ndarray
    grooves: np.ndarray


def angular_profile(design: HeartDesign, theta: np.ndarray) -> AngularProfile:
    """Evaluate the angle-only factors of ``design`` at angles ``theta`` (any shape)."""
    delta = theta - design.rv_angle
    infarct = np.zeros_like(theta)
    if design.infarct is not None:
        inf = design.infarct
        infarct = angular_window(theta - inf.angle, inf.half_span, 0.6)
    grooves = np.maximum(
        angular_window(delta - design.rv_half_span, 0.6, 1.0),
        angular_window(delta + design.rv_half_span, 0.6, 1.0),
    )
    grooves = np.maximum(grooves, 0.6 * angular_window(theta - design.fat_angle, 1.2, 2.0))
    return AngularProfile(
        cavity=1.0
        + design.ellipticity * np.cos(2.0 * (theta - design.ellipse_angle))
        + design.lobes * np.cos(3.0 * theta - design.ellipse_angle),
        septum=1.0 + design.septal_gain * angular_window(delta, 1.2, 1.0),
        infarct=infarct,
        rv_cos=np.cos(delta),
        rv_sin=np.sin(delta),
        grooves=grooves,
    )


def _infarct_weight(design: HeartDesign, angles: AngularProfile, level: np.ndarray):
    """1 inside the akinetic region, 0 outside, smooth in angle and level."""
    if design.infarct is None:
        return 0.0
    return angles.infarct * np.clip((level - design.infarct.start_level) / 0.2, 0.0, 1.0)


def lv_radial_scale(design: HeartDesign, c: np.ndarray) -> np.ndarray:
    """Cavity radius relative to end-diastole so that the volume follows the design curve."""
    volume_ratio = 1.0 - c * design.lv_ef / 100.0
    return np.sqrt(volume_ratio * design.long_axis_mm / cavity_length(design, c))


def lv_radii(
    design: HeartDesign, angles: AngularProfile, z: np.ndarray, c: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """Endocardial and epicardial radii (mm) along ``angles`` at depth ``z``, contraction ``c``.

    Returns:
        ``(endo, epi)`` broadcast to the common shape; both 0 above the base, ``endo``
        0 in the apical cap.
    """
    length = cavity_length(design, c)
    level = long_axis_level(design, z, c)
    clipped = np.clip(level, 0.0, 1.0)
    profile = np.sqrt(np.clip(1.0 - clipped**design.profile_exp, 0.0, None))
    endo_ed = design.cavity_radius_mm * profile * angles.cavity
    akinetic = _infarct_weight(design, angles, clipped)
    taper = 1.0 - (1.0 - design.apex_wall_ratio) * clipped
    wall = design.wall_mm * taper * angles.septum * (1.0 - design.infarct_thinning * akinetic)
    scale = lv_radial_scale(design, c)
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
