"""Anatomy and image formation of the synthetic short-axis cine-MRI phantom.

Pure functions of their arguments (random fields take an explicit generator).
Coordinates are millimetres in the image plane: ``x`` along columns, ``y`` along rows
(pointing down, i.e. posterior); angles are ``atan2(y, x)`` around the LV centre of a
slice, so the RV direction ``pi`` is image-left (the patient's right in radiological
convention). ``z`` is the depth below the end-diastolic LV base along the long axis;
arrays are ``(Z, H, W)`` with ``z`` shaped ``(Z, 1, 1)``, and the contraction ``c`` of
a frame is a scalar (0 at end-diastole, 1 at end-systole).

Heart. The LV cavity is a truncated prolate shape ``r(u) = R sqrt(1 - u^a)`` with
``u = depth / length`` (0 at the base, 1 at the apex), slightly deformed. Contraction
shortens the long axis (the base descends, the apex stays) and scales the radius so
that the cavity volume follows the design's volume curve; each angular sector of the
myocardium keeps its cross-sectional area per unit length, so the wall thickens in
systole and the myocardial volume is conserved. An infarct is an akinetic, thinned
sector. The RV cavity is the part of an ellipse, overlapping the LV on the septal
side, that lies outside the LV epicardium; the ellipse size is solved per slice so
that the cavity area follows a base-to-apex profile integrating to the design volume.

Image. A static background (body outline, subcutaneous fat, chest-wall muscle, lungs,
liver, stomach, spine and aorta, with textures and fat marbling) is composited with
the heart of each frame using partial-volume occupancies, then the dark bSSFP line at
fat-water boundaries, a Gaussian point-spread function, a smooth coil sensitivity,
off-resonance bands and Rician noise are applied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Angular samples used to integrate crescent areas.
N_THETA = 180
#: Standard deviation (voxels) of the in-plane blur of the rendered intensities.
PSF_SIGMA_PX = 0.6
#: Distance (mm) standing for "no such structure on this slice".
NO_HEART_MM = 1e3
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


def wrap_angle(angle: np.ndarray | float) -> np.ndarray:
    """Map angles to ``[-π, π)``."""
    return (np.asarray(angle) + math.pi) % (2.0 * math.pi) - math.pi


def angular_window(delta: np.ndarray, half_span: float, power: float) -> np.ndarray:
    """Cosine window ``cos(π/2 · |δ|/half)^power``: 1 at ``δ = 0``, 0 beyond ``half_span``."""
    x = np.clip(np.abs(wrap_angle(delta)) / half_span, 0.0, 1.0)
    return np.maximum(np.cos(0.5 * math.pi * x), 0.0) ** power


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


def heart_labels(radii: HeartRadii, r: np.ndarray) -> np.ndarray:
    """ACDC labels from radii and the radius ``r`` of each voxel centre.

    Returns:
        uint8 map: 0 background, 1 RV cavity, 2 LV myocardium, 3 LV cavity
        (papillary muscles and trabeculae count as cavity, as in ACDC).
    """
    label = np.zeros(np.broadcast_shapes(r.shape, radii.epi.shape), dtype=np.uint8)
    label[(radii.rv < 0.0) & (r >= radii.epi)] = 1
    label[(r < radii.epi) & (r >= radii.endo)] = 2
    label[r < radii.endo] = 3
    return label


@dataclass(frozen=True)
class Appearance:
    """Relative tissue intensities (bSSFP-like: blood bright, myocardium dark) and scan settings.

    Attributes:
        blood, myocardium, fat, muscle, tissue, liver, lung: relative intensities.
        texture: relative amplitude of tissue texture.
        scale: stored intensity of relative intensity 1.
        noise: Rician noise standard deviation, relative to intensity 1.
        bias: coefficients of the log bias field ``(x, y, x², y², xy)`` over the FOV.
        banding_mm: distance from the heart of the first dark bSSFP off-resonance band.
        banding_stretch: anisotropy ``(x, y)`` of the off-resonance field.
    """

    blood: float
    myocardium: float
    fat: float
    muscle: float
    tissue: float
    liver: float
    lung: float
    texture: float
    scale: float
    noise: float
    bias: tuple[float, float, float, float, float]
    banding_mm: float = 160.0
    banding_stretch: tuple[float, float] = (1.0, 1.0)


@dataclass(frozen=True)
class Organ:
    """An elliptical organ in body coordinates (mm), moving with the long-axis level.

    Attributes:
        centre: centre at the base ``(p, q)``; ``q`` points posterior.
        shift: displacement of the centre from base (level 0) to apex (level 1).
        axes: semi-axes at the base; ``shrink`` scales them by ``1 - shrink·level``.
        angle: orientation (rad).
        kind: ``"lung"``, ``"liver"``, ``"stomach"``, ``"cortex"``, ``"bone"`` or ``"vessel"``.
        wobble: amplitude (mm) of the smooth random deformation of its outline.
    """

    centre: tuple[float, float]
    shift: tuple[float, float]
    axes: tuple[float, float]
    angle: float
    shrink: float
    kind: str
    wobble: float = 0.0


@dataclass(frozen=True)
class BodyLayout:
    """Thorax outline in image millimetres and the organs inside it.

    Attributes:
        centre: body centre ``(x, y)`` in image coordinates.
        semi_axes: half width and half depth of the body.
        angle: rotation of the body in the image (rad).
        fat_mm, muscle_mm: subcutaneous fat and chest-wall muscle thickness.
        organs: painted in order, later ones on top.
    """

    centre: tuple[float, float]
    semi_axes: tuple[float, float]
    angle: float
    fat_mm: float
    muscle_mm: float
    organs: tuple[Organ, ...]


@dataclass(frozen=True)
class Background:
    """Static background without the heart, all ``(Z, H, W)`` float32.

    ``inner`` has mediastinal tissue where ``outer`` has organs (lungs, liver...): the
    heart renderer shows ``inner`` right next to the heart, so that organs keep clear of
    it as it moves. ``*_fat`` are fat fractions (for the bSSFP fat-water boundary
    artefact); ``texture`` is a unit-variance texture field.
    """

    inner: np.ndarray
    outer: np.ndarray
    inner_fat: np.ndarray
    outer_fat: np.ndarray
    texture: np.ndarray

    def crop(self, rows: slice, cols: slice) -> Background:
        """Copies of the fields restricted to ``rows, cols``."""
        fields = (self.inner, self.outer, self.inner_fat, self.outer_fat, self.texture)
        return Background(*(f[:, rows, cols].copy() for f in fields))


@dataclass
class Canvas:
    """Intensity and fat fraction under composition (a local, short-lived buffer)."""

    image: np.ndarray
    fat: np.ndarray

    def paint(self, alpha: np.ndarray, value: np.ndarray | float, fat: float = 0.0) -> None:
        """Composite a material of intensity ``value`` and fat fraction ``fat``."""
        self.image = paint(self.image, alpha, value)
        self.fat = paint(self.fat, alpha, fat)

    def paint_at(
        self, index: tuple[slice, ...], alpha: np.ndarray, value: np.ndarray | float, fat: float
    ) -> None:
        """:meth:`paint` restricted to ``image[index]``."""
        self.image[index] = paint(self.image[index], alpha, value)
        self.fat[index] = paint(self.fat[index], alpha, fat)

    def inked(self, strength: float = 0.7) -> np.ndarray:
        """Image with the dark bSSFP line where fat meets water (fat fraction near 0.5)."""
        return (self.image * (1.0 - strength * 4.0 * self.fat * (1.0 - self.fat))).astype(
            np.float32
        )


def paint(image: np.ndarray, alpha: np.ndarray, value: np.ndarray | float) -> np.ndarray:
    """Composite ``value`` over ``image`` with occupancy ``alpha`` in ``[0, 1]``."""
    return image + alpha * (value - image)


def ellipse_distance(
    p: np.ndarray, q: np.ndarray, axes: tuple[float, float], angle: float
) -> np.ndarray:
    """Approximate signed distance (mm, negative inside) to an ellipse centred at the origin."""
    cos, sin = math.cos(angle), math.sin(angle)
    u = cos * p + sin * q
    v = -sin * p + cos * q
    a, b = axes
    rho = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    grad = np.sqrt((u / a**2) ** 2 + (v / b**2) ** 2) / np.maximum(rho, 1e-6)
    return (rho - 1.0) / np.clip(grad, 1.0 / np.maximum(a, b), 1.0 / np.minimum(a, b))


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma_px: float) -> np.ndarray:
    """In-plane low-pass Gaussian noise of unit standard deviation, ``(Z, H, W)`` float32.

    Wide kernels are applied on a grid coarser by ``sigma_px / 2`` and interpolated back.
    """
    from scipy.ndimage import gaussian_filter

    factor = max(int(sigma_px / 3.0), 1)
    pad = 0 if factor == 1 else 2
    coarse = (shape[0], shape[1] // factor + pad, shape[2] // factor + pad)
    sigma = sigma_px / factor
    field = gaussian_filter(rng.standard_normal(coarse, dtype=np.float32), (0, sigma, sigma))
    if factor > 1:
        field = _upsample(_upsample(field, 1, shape[1], factor), 2, shape[2], factor)
    return field / max(float(field.std()), 1e-6)


def _upsample(field: np.ndarray, axis: int, size: int, factor: int) -> np.ndarray:
    """Linear interpolation along ``axis`` from a grid ``factor`` times coarser."""
    position = np.arange(size) / factor
    low = np.floor(position).astype(np.int64)
    shape = [1] * field.ndim
    shape[axis] = size
    frac = (position - low).astype(np.float32).reshape(shape)
    below, above = np.take(field, low, axis=axis), np.take(field, low + 1, axis=axis)
    return below + frac * (above - below)


def _step(field: np.ndarray, threshold: float, ramp: float = 0.15) -> np.ndarray:
    return np.clip((field - threshold) / ramp, 0.0, 1.0)


def _organ_material(
    kind: str, look: Appearance, fields: tuple[np.ndarray, ...]
) -> np.ndarray | float:
    """Intensity of an organ from the texture fields ``(fine, coarse, blobs)``."""
    fine, coarse, _ = fields
    if kind == "lung":
        vessels = _step(fine, 2.0, 0.4) + 0.5 * _step(coarse, 1.8, 0.3)
        return look.lung * (1.0 + 0.4 * fine) + vessels * look.tissue
    if kind == "liver":
        vessels = 0.5 * _step(fine, 2.4, 0.3) * look.blood
        return look.liver * (1.0 + look.texture * (0.5 * fine + 0.5 * coarse)) + vessels
    if kind == "stomach":
        return paint(look.liver, np.clip(0.5 + 0.6 * coarse, 0.0, 1.0), 0.7 * look.blood)
    if kind == "cortex":
        return 0.1 * look.muscle
    if kind == "bone":
        return look.muscle * (1.1 + 0.8 * look.texture * fine)
    return look.blood * (1.0 + 0.02 * fine)


def _paint_soft_tissue(
    canvas: Canvas, region: np.ndarray, look: Appearance, fields: tuple[np.ndarray, ...]
) -> None:
    """Mediastinal and abdominal tissue: a patchwork of soft tissue, fat and muscle."""
    fine, coarse, blobs = fields
    canvas.paint(region, look.tissue * (1.0 + look.texture * (fine + 0.5 * coarse)))
    canvas.paint(region * _step(blobs, 0.9), look.fat * (1.0 + 0.05 * fine), fat=1.0)
    canvas.paint(region * _step(-coarse, 1.0), look.muscle * (1.0 + look.texture * fine))


def render_body(
    x: np.ndarray,
    y: np.ndarray,
    level: np.ndarray,
    body: BodyLayout,
    look: Appearance,
    rng: np.random.Generator,
) -> Background:
    """Static background of every slice, without the heart.

    Args:
        x: ``(W,)`` column positions (mm); y: ``(H,)`` row positions (mm).
        level: ``(Z,)`` long-axis level of each slice (organs move with it).
        body, look: layout and intensities.
        rng: generator of the tissue textures.
    """
    shape = (level.size, y.size, x.size)
    width = float(abs(x[1] - x[0]))
    fields = (
        smooth_noise(rng, shape, 1.0),
        smooth_noise(rng, shape, 4.0),
        smooth_noise(rng, shape, 6.0 / width),
    )
    warp = smooth_noise(rng, shape, 30.0 / width)
    cos, sin = math.cos(body.angle), math.sin(body.angle)
    dx, dy = x[None, :] - body.centre[0], y[:, None] - body.centre[1]
    p, q = cos * dx + sin * dy, -sin * dx + cos * dy
    depth = 3.0 * warp - ellipse_distance(p, q, body.semi_axes, 0.0)
    fat_depth = body.fat_mm * (1.0 - 0.45 * np.clip(q / body.semi_axes[1], -1.0, 1.0))
    fat_depth = fat_depth * (1.0 + 0.3 * warp)
    canvas = Canvas(np.zeros(shape, np.float32), np.zeros(shape, np.float32))
    canvas.paint(soft_inside(-depth, width), look.fat * (1.0 + 0.05 * fields[0]), fat=1.0)
    muscle = look.muscle * (1.0 + look.texture * (fields[0] + 0.5 * fields[1]))
    canvas.paint(soft_inside(fat_depth - depth, width), muscle)
    thorax = soft_inside(fat_depth + body.muscle_mm - depth, width)
    _paint_soft_tissue(canvas, thorax, look, fields)
    inner = Canvas(canvas.image.copy(), canvas.fat.copy())
    lv = level.reshape(-1, 1, 1)
    for organ in body.organs:
        rows, cols = _organ_box(organ, body, x, y, level)
        at = (slice(None), rows, cols)
        grow = 1.0 - organ.shrink * lv
        axes = (organ.axes[0] * grow, organ.axes[1] * grow)
        cp = p[rows, cols] - (organ.centre[0] + organ.shift[0] * lv)
        cq = q[rows, cols] - (organ.centre[1] + organ.shift[1] * lv)
        dist = ellipse_distance(cp, cq, axes, organ.angle) + organ.wobble * warp[at]
        value = _organ_material(organ.kind, look, tuple(f[at] for f in fields))
        canvas.paint_at(at, soft_inside(dist, width) * thorax[at], value, 0.0)
    return Background(inner.image, canvas.image, inner.fat, canvas.fat, fields[0])


def _organ_box(
    organ: Organ, body: BodyLayout, x: np.ndarray, y: np.ndarray, level: np.ndarray
) -> tuple[slice, slice]:
    """Rows and columns that can hold ``organ`` on any slice (possibly empty)."""
    cos, sin = math.cos(body.angle), math.sin(body.angle)
    levels = np.array([level.min(), level.max()])
    p = organ.centre[0] + organ.shift[0] * levels
    q = organ.centre[1] + organ.shift[1] * levels
    cx, cy = body.centre[0] + cos * p - sin * q, body.centre[1] + sin * p + cos * q
    reach = max(organ.axes) * (1.0 + abs(organ.shrink) * float(levels.max()))
    reach += 5.0 * organ.wobble + 5.0
    cols = np.searchsorted(x, [cx.min() - reach, cx.max() + reach])
    rows = np.searchsorted(y, [cy.min() - reach, cy.max() + reach])
    return slice(int(rows[0]), int(rows[1])), slice(int(cols[0]), int(cols[1]))


def _inside(r: np.ndarray, radius: np.ndarray, width: float) -> np.ndarray:
    """Occupancy of the disc-like region ``r < radius``; empty where ``radius`` is 0."""
    return soft_inside(r - np.where(radius > 0.0, radius, -width), width)


@dataclass(frozen=True)
class HeartView:
    """Static polar geometry of the voxels around the heart, ``(Z, h, w)`` float32.

    Attributes:
        dx, dy: voxel position relative to its slice's LV centre (mm).
        r: distance from the LV centre (mm).
        angles: :func:`angular_profile` at each voxel's direction.
        ridges: trabecular ridge pattern in ``[0, 1]``.
        z: ``(Z, 1, 1)`` slice depths (mm).
        width: voxel size (mm), the width of partial-volume edges.
        core: ``(rows, cols)`` crop that holds the LV cavity in every slice and frame.
    """

    dx: np.ndarray
    dy: np.ndarray
    r: np.ndarray
    angles: AngularProfile
    ridges: np.ndarray
    z: np.ndarray
    width: float
    core: tuple[slice, slice]


def heart_view(
    design: HeartDesign, dx: np.ndarray, dy: np.ndarray, z: np.ndarray, width: float
) -> HeartView:
    """Precompute the polar geometry of voxels at offsets ``(dx, dy)`` from the LV centres."""
    dx, dy = np.broadcast_arrays(dx.astype(np.float32), dy.astype(np.float32))
    theta = np.arctan2(dy, dx)
    phase = 1.7 * np.arange(theta.shape[0], dtype=np.float32).reshape(-1, 1, 1)
    n = design.trabeculae
    pattern = (
        np.cos(n * theta + phase)
        + 0.8 * np.cos((n // 2 + 1) * theta + 2.3 * phase)
        + 0.6 * np.cos((n + 7) * theta + 3.1 * phase)
    )
    ridges = np.clip((pattern - 0.2) / 1.2, 0.0, 1.0)
    r = np.hypot(dx, dy)
    rows, cols = np.nonzero((r < design.cavity_radius_mm * 1.15 + 2.0 * width).any(axis=0))
    return HeartView(
        dx=dx,
        dy=dy,
        r=r,
        angles=angular_profile(design, theta),
        ridges=ridges,
        z=np.asarray(z, dtype=np.float32).reshape(-1, 1, 1),
        width=width,
        core=(
            slice(int(rows.min()), int(rows.max()) + 1),
            slice(int(cols.min()), int(cols.max()) + 1),
        ),
    )


def _cavity_detail(
    design: HeartDesign, view: HeartView, endo: np.ndarray, cavity: np.ndarray, c: float
) -> np.ndarray:
    """Occupancy of trabeculae and papillary muscles (myocardium inside the cavity).

    Trabeculae are ridges along the endocardium, deeper in systole; the two papillary
    muscles sit at the free wall of mid-ventricular slices and grow in systole. All
    arrays are restricted to ``view.core``.
    """
    core = (slice(None), *view.core)
    dx, dy, r, endo, cavity = view.dx[core], view.dy[core], view.r[core], endo[core], cavity[core]
    band = np.clip(1.0 - (endo - r) / (2.0 + 2.0 * c), 0.0, 1.0)
    alpha = 0.7 * band * view.ridges[core]
    directions = (design.rv_angle + math.pi + np.array([-0.8, 0.8])).astype(np.float32)
    anchor, _ = lv_radii(design, angular_profile(design, directions), view.z, c)
    level = long_axis_level(design, view.z, c)
    presence = np.clip(1.0 - np.abs(level - 0.5) / 0.4, 0.0, 1.0) ** 0.5
    radius = design.papillary_mm * (1.0 + 0.5 * c) * presence
    rho = np.maximum(anchor - 0.7 * radius, 0.0)
    for i, direction in enumerate(directions):
        px = rho[..., i : i + 1] * math.cos(direction)
        py = rho[..., i : i + 1] * math.sin(direction)
        dist = np.hypot(dx - px, dy - py) - radius
        alpha = np.maximum(alpha, soft_inside(dist, view.width) * (radius > 0.5 * view.width))
    return alpha * cavity


def render_heart(
    background: Background,
    design: HeartDesign,
    look: Appearance,
    view: HeartView,
    c: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Paint the heart of one frame over the background around it.

    Args:
        background: the background cropped to the view (:meth:`Background.crop`);
            organs are pushed back to 4 mm from the heart's current outline.
        design, look: heart design and intensities.
        view: polar geometry of the voxels (:func:`heart_view`).
        c: contraction in ``[0, 1]``.

    Returns:
        ``(image, label)``: relative intensities ``(Z, h, w)`` float32 with the fat-water
        artefact applied, and the uint8 ACDC labels.
    """
    r, width, texture = view.r, view.width, background.texture
    radii = heart_radii(design, view.angles, (view.dx, view.dy), view.z, c)
    outline = radii.outline_distance(r)
    clear = soft_inside(4.0 - outline, 3.0)
    canvas = Canvas(
        paint(background.inner, clear, background.outer),
        paint(background.inner_fat, clear, background.outer_fat),
    )
    myo = look.myocardium * (1.0 + 0.6 * look.texture * texture)
    blood = look.blood * (1.0 + 0.03 * texture)
    canvas.paint(soft_inside(outline, width), look.fat * (1.0 + 0.05 * texture), fat=1.0)
    lv = _inside(r, radii.epi, width)
    canvas.paint(np.maximum(soft_inside(radii.rv - radii.rv_wall, width), lv), myo)
    image = canvas.inked()
    image = paint(image, soft_inside(radii.rv, width) * (1.0 - lv), 0.95 * blood)
    cavity = _inside(r, radii.endo, width)
    image = paint(image, cavity, blood)
    core = (slice(None), *view.core)
    detail = _cavity_detail(design, view, radii.endo, cavity, c)
    image[core] = paint(image[core], detail, myo[core])
    return blur(image), heart_labels(radii, r)


def banding(dx: np.ndarray, dy: np.ndarray, look: Appearance) -> np.ndarray:
    """Dark bSSFP off-resonance bands, far from the shimmed heart, as an intensity factor.

    The off-resonance (in cycles) grows as ``(d / banding_mm)⁴`` with the (stretched)
    distance ``d`` from the heart; signal drops where it crosses half-integers.
    """
    sx, sy = look.banding_stretch
    u, v = dx * sx / look.banding_mm, dy * sy / look.banding_mm
    radial = 0.5 * (u * u + v * v) ** 2
    cycles = radial + 0.25 * u * v + 0.15 * (u**3 - v**2 * u)
    offset = np.abs((cycles % 1.0) - 0.5)
    dip = 0.7 * np.exp(-0.5 * (offset / 0.035) ** 2) * np.clip((radial - 0.3) / 0.3, 0.0, 1.0)
    return (1.0 - dip).astype(np.float32)


def blur(image: np.ndarray) -> np.ndarray:
    """In-plane Gaussian point-spread function of ``PSF_SIGMA_PX`` voxels, float32."""
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(image.astype(np.float32), (0, PSF_SIGMA_PX, PSF_SIGMA_PX))


def rician_int16(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of ``signal`` plus complex Gaussian noise, rounded to int16.

    The noise ``(n1, n2) = ρ (cos φ, sin φ)`` is drawn by Box–Muller from the 32-bit
    halves of the generator's raw output (several times faster than two normal draws),
    and ``|s + n1 + i n2|² = s² + ρ (ρ + 2 s cos φ)``.

    Args:
        signal: noise-free magnitude, any shape, float32.
        sigma: standard deviation of each noise component.
        rng: noise generator.
    """
    raw = rng.bit_generator.random_raw(signal.size).view(np.uint32).reshape(-1, 2)
    uniform = (raw.astype(np.float32) + np.float32(0.5)) * np.float32(2.0**-32)
    radius = np.float32(sigma) * np.sqrt(np.float32(-2.0) * np.log(uniform[:, 0]))
    cos_phase = np.cos(np.float32(2.0 * math.pi) * uniform[:, 1])
    flat = signal.reshape(-1)
    power = flat * flat + radius * (radius + 2.0 * flat * cos_phase)
    magnitude = np.rint(np.sqrt(np.maximum(power, 0.0)))
    limit = np.iinfo(np.int16).max
    return np.minimum(magnitude, limit).astype(np.int16).reshape(signal.shape)
