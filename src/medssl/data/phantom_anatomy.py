"""Anatomy and image formation of the phantom, under their former single-module name.

The code lives in :mod:`~medssl.data.phantom_geometry` (angles, ellipses, partial
volume), :mod:`~medssl.data.phantom_heart` (LV shape and contraction),
:mod:`~medssl.data.phantom_rv` (RV, heart boundaries and labels),
:mod:`~medssl.data.phantom_imaging` (intensities, compositing, PSF, noise),
:mod:`~medssl.data.phantom_body` (thorax and organs) and
:mod:`~medssl.data.phantom_render` (heart rendering); this module re-exports their
public names so that ``from medssl.data import phantom_anatomy`` keeps working.
"""

from __future__ import annotations

from medssl.data.phantom_body import Background, BodyLayout, Organ, render_body
from medssl.data.phantom_geometry import (
    angular_window,
    ellipse_distance,
    soft_inside,
    wrap_angle,
)
from medssl.data.phantom_heart import (
    AngularProfile,
    HeartDesign,
    Infarct,
    angular_profile,
    cavity_length,
    contraction_curve,
    long_axis_level,
    lv_radial_scale,
    lv_radii,
)
from medssl.data.phantom_imaging import (
    PSF_SIGMA_PX,
    Appearance,
    Canvas,
    banding,
    blur,
    paint,
    rician_int16,
    smooth_noise,
)
from medssl.data.phantom_render import HeartView, heart_view, render_heart
from medssl.data.phantom_rv import (
    N_THETA,
    NO_HEART_MM,
    RV_PROFILE_INTEGRAL,
    HeartRadii,
    heart_bounds,
    heart_labels,
    heart_radii,
    ray_ellipse,
    rv_area_mm2,
    rv_ellipse,
)

__all__ = [
    "NO_HEART_MM",
    "N_THETA",
    "PSF_SIGMA_PX",
    "RV_PROFILE_INTEGRAL",
    "AngularProfile",
    "Appearance",
    "Background",
    "BodyLayout",
    "Canvas",
    "HeartDesign",
    "HeartRadii",
    "HeartView",
    "Infarct",
    "Organ",
    "angular_profile",
    "angular_window",
    "banding",
    "blur",
    "cavity_length",
    "contraction_curve",
    "ellipse_distance",
    "heart_bounds",
    "heart_labels",
    "heart_radii",
    "heart_view",
    "long_axis_level",
    "lv_radial_scale",
    "lv_radii",
    "paint",
    "ray_ellipse",
    "render_body",
    "render_heart",
    "rician_int16",
    "rv_area_mm2",
    "rv_ellipse",
    "smooth_noise",
    "soft_inside",
    "wrap_angle",
]
