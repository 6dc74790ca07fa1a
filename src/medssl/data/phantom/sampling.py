"""Per-patient random draws of the phantom: ACDC group priors, heart, scan, look and body.

Every draw takes an explicit generator. The five ACDC groups (NOR, MINF, DCM, HCM, RV)
drive the sampled volumes, ejection fractions and wall thickness; everything else
(matrix, spacing, pose, intensities, bias field, noise) varies per patient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from medssl.data.phantom.body import BodyLayout, Organ
from medssl.data.phantom.heart import HeartDesign, Infarct
from medssl.data.phantom.imaging import Appearance
from medssl.data.phantom.render import Acquisition
from medssl.data.phantom.rv import heart_bounds

GROUPS = ("NOR", "MINF", "DCM", "HCM", "RV")


@dataclass(frozen=True)
class GroupPrior:
    """Mean and standard deviation of the design quantities of one ACDC group."""

    lv_edv_ml: tuple[float, float]
    lv_ef: tuple[float, float]
    rv_edv_ml: tuple[float, float]
    rv_ef: tuple[float, float]
    wall_mm: tuple[float, float]
    septal_gain: tuple[float, float]
    infarct: bool = False


GROUP_PRIORS = MappingProxyType(
    {
        "NOR": GroupPrior((140, 18), (63, 4), (140, 15), (58, 5), (8.5, 0.6), (0.05, 0.03)),
        "MINF": GroupPrior((185, 25), (35, 4), (150, 20), (52, 6), (8.5, 0.7), (0.05, 0.03), True),
        "DCM": GroupPrior((265, 30), (22, 5), (175, 30), (42, 8), (6.8, 0.6), (0.0, 0.03)),
        "HCM": GroupPrior((115, 15), (74, 4), (130, 18), (62, 5), (17.5, 1.5), (0.35, 0.1)),
        "RV": GroupPrior((130, 15), (58, 5), (270, 30), (30, 6), (8.0, 0.7), (0.0, 0.03)),
    }
)


def _draw(rng: np.random.Generator, mean_sd: tuple[float, float]) -> float:
    """Normal draw truncated at two standard deviations."""
    return mean_sd[0] + mean_sd[1] * float(np.clip(rng.standard_normal(), -2.0, 2.0))


def sample_heart(group: str, rng: np.random.Generator) -> HeartDesign:
    """Draw a heart design from the prior of ``group``."""
    prior = GROUP_PRIORS[group]
    lv_edv, lv_ef = _draw(rng, prior.lv_edv_ml), _draw(rng, prior.lv_ef)
    rv_edv, rv_ef = _draw(rng, prior.rv_edv_ml), _draw(rng, prior.rv_ef)
    rv_angle = math.pi + rng.uniform(0.05, 0.45)
    infarct = None
    if prior.infarct:
        infarct = Infarct(
            angle=rv_angle + math.pi + rng.uniform(-1.4, 1.4),
            half_span=rng.uniform(0.55, 0.85),
            start_level=rng.uniform(0.1, 0.35),
            thinning=rng.uniform(0.45, 0.6),
        )
    return HeartDesign(
        lv_edv_ml=lv_edv,
        lv_ef=lv_ef,
        rv_edv_ml=rv_edv,
        rv_ef=rv_ef,
        wall_mm=_draw(rng, prior.wall_mm),
        long_axis_mm=86.0 * (lv_edv / 140.0) ** (1 / 3) * rng.uniform(0.93, 1.07),
        profile_exp=rng.uniform(2.2, 3.2),
        apex_wall_ratio=rng.uniform(0.6, 0.8),
        septal_gain=max(_draw(rng, prior.septal_gain), 0.0),
        ellipticity=rng.uniform(0.0, 0.05),
        lobes=rng.uniform(0.0, 0.03),
        ellipse_angle=rng.uniform(0.0, math.pi),
        rv_angle=rv_angle,
        rv_half_span=rng.uniform(1.0, 1.3),
        rv_aspect=rng.uniform(1.3, 1.8),
        rv_overlap=rng.uniform(0.3, 0.55),
        rv_extent=rng.uniform(0.75, 0.9),
        rv_wall_mm=rng.uniform(1.5, 2.5),
        long_shortening=0.05 * lv_ef / 100.0 * rng.uniform(0.8, 1.2),
        papillary_mm=rng.uniform(2.5, 4.0) * (1.3 if group == "HCM" else 1.0),
        fat_mm=rng.uniform(2.0, 6.0),
        fat_angle=rng.uniform(-math.pi, math.pi),
        trabeculae=int(rng.integers(12, 21)),
        infarct=infarct,
    )


def sample_acquisition(
    design: HeartDesign, rng: np.random.Generator, n_frames: int | None = None
) -> Acquisition:
    """Draw the scan geometry: matrix, spacing, slices covering base to apex, frames."""
    frames = int(rng.integers(12, 21))
    frames = frames if n_frames is None else n_frames
    es_index = int(np.clip(round(frames * rng.uniform(0.33, 0.43)), 1, frames - 1))
    rows = 2 * int(rng.integers(100, 129))
    cols = 2 * int(rows * rng.uniform(0.35, 0.5))
    pixel = float(np.clip(rng.uniform(250.0, 330.0) / rows, 1.25, 1.8))
    pixel = round(pixel * 256.0) / 256.0  # exact in float32, so NIfTI zooms equal the truth
    slice_mm = 10.0 if rng.uniform() < 0.7 else float(rng.integers(10, 19)) / 2.0
    span = design.long_axis_mm + 0.5 * design.apex_cap_mm
    slice_mm = min(max(slice_mm, span / 10.0), 10.0)
    descent = design.long_shortening * design.long_axis_mm
    first = max(descent + 1.0, 0.5 * slice_mm + rng.uniform(-1.5, 1.5))
    span -= first
    slices = int(np.clip(math.floor(span / slice_mm) + 1 + int(rng.integers(0, 2)), 6, 11))
    slice_mm = round(slice_mm * 64.0) / 64.0
    drift = (rng.uniform(-8.0, 8.0), rng.uniform(-8.0, 8.0))
    bounds = heart_bounds(design, first + slice_mm * np.arange(slices))
    centre = []
    for axis, (size, wanted) in enumerate(((cols, (-20.0, 20.0)), (rows, (-10.0, 25.0)))):
        half = 0.5 * size * pixel - 10.0  # FOV half-width, less room for the apex drift
        low, high = -half - bounds[:, 2 * axis].min(), half - bounds[:, 2 * axis + 1].max()
        centre.append(_place(rng.uniform(*wanted), low, high))
    return Acquisition(
        rows=rows,
        cols=cols,
        slices=slices,
        frames=frames,
        es_index=es_index,
        pixel_mm=(pixel, pixel),
        slice_mm=slice_mm,
        first_slice_mm=first,
        heart_centre=(centre[0], centre[1]),
        apex_drift=drift,
        frame_s=rng.uniform(0.75, 1.05) / frames,
        rotation=(rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.6), rng.uniform(-math.pi, math.pi)),
    )


def _place(wanted: float, low: float, high: float) -> float:
    """``wanted`` moved into ``[low, high]`` (the middle when empty): the heart stays in view."""
    return 0.5 * (low + high) if low > high else float(np.clip(wanted, low, high))


def sample_appearance(rng: np.random.Generator) -> Appearance:
    """Draw per-patient intensities, contrast, bias field and noise level."""
    return Appearance(
        blood=rng.uniform(0.72, 0.88),
        myocardium=rng.uniform(0.18, 0.28),
        fat=rng.uniform(0.8, 0.95),
        muscle=rng.uniform(0.2, 0.3),
        tissue=rng.uniform(0.28, 0.4),
        liver=rng.uniform(0.2, 0.3),
        lung=rng.uniform(0.02, 0.05),
        texture=rng.uniform(0.06, 0.14),
        scale=rng.uniform(500.0, 1400.0),
        noise=rng.uniform(0.012, 0.03),
        bias=tuple(float(v) for v in rng.uniform(-0.3, 0.3, size=5)),
        banding_mm=rng.uniform(130.0, 220.0),
        banding_stretch=(rng.uniform(0.7, 1.3), rng.uniform(0.7, 1.3)),
    )


def sample_body(acq: Acquisition, rng: np.random.Generator) -> BodyLayout:
    """Draw the thorax outline and organs around the heart (body coordinates, mm)."""
    half_w, half_d = rng.uniform(180.0, 225.0), rng.uniform(125.0, 155.0)
    angle = rng.uniform(-0.4, 0.4)
    fat_mm, muscle_mm = rng.uniform(6.0, 18.0), rng.uniform(8.0, 15.0)
    hp, hq = rng.uniform(-15.0, 25.0), rng.uniform(-35.0, -5.0)
    spine_q = hq + rng.uniform(70.0, 90.0)

    def organ(p, q, shift, axes, tilt, shrink, kind, wobble=10.0) -> Organ:
        jitter = rng.uniform(-8.0, 8.0, size=4)
        axes = (axes[0] + jitter[2], axes[1] + jitter[3])
        return Organ((p + jitter[0], q + jitter[1]), shift, axes, tilt, shrink, kind, wobble)

    organs = (
        organ(hp - 60, hq - 40, (15, 10), (75, 80), 0.5, 0.15, "lung"),
        organ(hp + 65, hq - 35, (-15, 10), (80, 90), -0.5, 0.15, "lung"),
        organ(hp - 40, hq + 100, (10, -55), (125, 65), 0.2, -0.1, "liver"),
        organ(hp + 90, hq + 90, (0, -35), (38, 28), 0.3, 0.0, "stomach", 5.0),
        Organ((hp + 35, spine_q), (0, 0), (19, 17), 0.0, 0.0, "cortex"),
        Organ((hp + 35, spine_q), (0, 0), (16, 14), 0.0, 0.0, "bone"),
        organ(hp + 5, spine_q - 15, (0, 0), (11, 11), 0.0, 0.0, "vessel", 0.0),
    )
    cos, sin = math.cos(angle), math.sin(angle)
    hx, hy = acq.heart_centre
    centre = (hx - (cos * hp - sin * hq), hy - (sin * hp + cos * hq))
    return BodyLayout(centre, (half_w, half_d), angle, fat_mm, muscle_mm, organs)
