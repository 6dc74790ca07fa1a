"""Rendering of one patient's cine series from its design, scan, body and appearance.

The static background (:func:`~medssl.data.phantom.body.render_body`) is composited
with the heart of each frame using partial-volume occupancies, then the dark bSSFP line
at fat-water boundaries, a Gaussian point-spread function, a smooth coil sensitivity,
off-resonance bands and Rician noise are applied
(:mod:`medssl.data.phantom.imaging`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from medssl.data.phantom.body import Background, BodyLayout, render_body
from medssl.data.phantom.geometry import soft_inside
from medssl.data.phantom.heart import (
    AngularProfile,
    HeartDesign,
    angular_profile,
    contraction_curve,
    long_axis_level,
    lv_radii,
)
from medssl.data.phantom.imaging import (
    Appearance,
    Canvas,
    banding,
    blur,
    paint,
    rician_int16,
)
from medssl.data.phantom.rv import heart_bounds, heart_labels, heart_radii


@dataclass(frozen=True)
class Acquisition:
    """Scan geometry of one patient.

    Attributes:
        rows, cols, slices, frames: matrix size ``(H, W)``, number of slices and frames.
        es_index: 0-based end-systolic frame (end-diastole is frame 0).
        pixel_mm: in-plane voxel size ``(row = sy, column = sx)``.
        slice_mm: slice spacing = thickness.
        first_slice_mm: depth of the first (basal) slice below the ED base.
        heart_centre: LV centre at the base in image millimetres ``(x, y)``.
        apex_drift: in-plane displacement of the LV centre from base to apex.
        frame_s: time between frames (s).
        rotation: Euler angles of the slice stack in scanner space (rad).
    """

    rows: int
    cols: int
    slices: int
    frames: int
    es_index: int
    pixel_mm: tuple[float, float]
    slice_mm: float
    first_slice_mm: float
    heart_centre: tuple[float, float]
    apex_drift: tuple[float, float]
    frame_s: float
    rotation: tuple[float, float, float]

    @property
    def zooms(self) -> tuple[float, float, float]:
        return (self.pixel_mm[1], self.pixel_mm[0], self.slice_mm)


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


def _inside(r: np.ndarray, radius: np.ndarray, width: float) -> np.ndarray:
    """Occupancy of the disc-like region ``r < radius``; empty where ``radius`` is 0."""
    return soft_inside(r - np.where(radius > 0.0, radius, -width), width)


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


def _heart_box(
    design: HeartDesign, acq: Acquisition, x: np.ndarray, y: np.ndarray, z: np.ndarray
) -> tuple[slice, slice]:
    """Rows and columns that hold the heart and its organ clearance in every slice and frame."""
    drift = z / design.long_axis_mm
    bounds = heart_bounds(design, z)
    margin = 8.0
    x_lo = np.min(acq.heart_centre[0] + acq.apex_drift[0] * drift + bounds[:, 0]) - margin
    x_hi = np.max(acq.heart_centre[0] + acq.apex_drift[0] * drift + bounds[:, 1]) + margin
    y_lo = np.min(acq.heart_centre[1] + acq.apex_drift[1] * drift + bounds[:, 2]) - margin
    y_hi = np.max(acq.heart_centre[1] + acq.apex_drift[1] * drift + bounds[:, 3]) + margin
    cols = np.searchsorted(x, [x_lo, x_hi])
    rows = np.searchsorted(y, [y_lo, y_hi])
    return slice(int(rows[0]), int(rows[1])), slice(int(cols[0]), int(cols[1]))


def _coil_gain(x: np.ndarray, y: np.ndarray, acq: Acquisition, look: Appearance) -> np.ndarray:
    """Smooth coil sensitivity (1 at the heart) times off-resonance banding, ``(H, W)``."""
    xn, yn = x[None, :] / abs(x[0]), y[:, None] / abs(y[0])
    b = look.bias
    log_b = b[0] * xn + b[1] * yn + b[2] * xn**2 + b[3] * yn**2 + b[4] * xn * yn
    log_b = np.clip(log_b, -0.7, 0.7)
    i = int(np.argmin(np.abs(y - acq.heart_centre[1])))
    j = int(np.argmin(np.abs(x - acq.heart_centre[0])))
    hx, hy = acq.heart_centre
    bands = banding(x[None, :] - hx, y[:, None] - hy, look)
    return (np.exp(log_b - log_b[i, j]) * bands).astype(np.float32)


def render_cine(
    design: HeartDesign,
    acq: Acquisition,
    body: BodyLayout,
    look: Appearance,
    rngs: tuple[np.random.Generator, np.random.Generator],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render a whole cine series with Rician noise and its ED/ES label maps.

    Args:
        design, acq, body, look: the patient.
        rngs: generators of the tissue textures and of the noise.

    Returns:
        ``(cine, label_ed, label_es)``: ``(T, Z, Y, X)`` int16 and two ``(Z, Y, X)`` uint8.
    """
    x = (np.arange(acq.cols) - (acq.cols - 1) / 2.0) * acq.pixel_mm[1]
    y = (np.arange(acq.rows) - (acq.rows - 1) / 2.0) * acq.pixel_mm[0]
    z = acq.first_slice_mm + acq.slice_mm * np.arange(acq.slices)
    background = render_body(x, y, z / design.long_axis_mm, body, look, rngs[0])
    rows, cols = _heart_box(design, acq, x, y, z)
    drift = z[:, None, None] / design.long_axis_mm
    dx = x[None, None, cols] - (acq.heart_centre[0] + acq.apex_drift[0] * drift)
    dy = y[None, rows, None] - (acq.heart_centre[1] + acq.apex_drift[1] * drift)
    view = heart_view(design, dx, dy, z, acq.pixel_mm[1])
    box = background.crop(rows, cols)
    frame = blur(Canvas(background.outer, background.outer_fat).inked())
    gain = look.scale * _coil_gain(x, y, acq, look)
    cine = np.empty((acq.frames, *frame.shape), dtype=np.int16)
    labels = {}
    for t, c in enumerate(contraction_curve(acq.frames, acq.es_index)):
        frame[:, rows, cols], label = render_heart(box, design, look, view, float(c))
        cine[t] = rician_int16(frame * gain, look.noise * look.scale, rngs[1])
        if t in (0, acq.es_index):
            labels[t] = np.zeros(frame.shape, dtype=np.uint8)
            labels[t][:, rows, cols] = label
    return cine, labels[0], labels[acq.es_index]
