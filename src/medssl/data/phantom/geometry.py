"""Planar geometry shared by the phantom's heart and body: angles, ellipses, partial volume.

Pure functions of their arguments. Coordinates are millimetres in the image plane:
``x`` along columns, ``y`` along rows (pointing down, i.e. posterior); angles are
``atan2(y, x)``.
"""

from __future__ import annotations

import math

import numpy as np


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
