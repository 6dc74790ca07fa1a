"""Static background of the phantom: thorax outline and the organs around the heart.

Body outline, subcutaneous fat, chest-wall muscle, lungs, liver, stomach, spine and
aorta, with textures and fat marbling, rendered once per patient for every slice
(organs move with the long-axis level). Coordinates as in
:mod:`medssl.data.phantom.geometry`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from medssl.data.phantom.geometry import ellipse_distance, soft_inside
from medssl.data.phantom.imaging import Appearance, Canvas, paint, smooth_noise


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
