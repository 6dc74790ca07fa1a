"""Synthetic short-axis cardiac cine-MRI in the official ACDC layout.

:func:`generate_phantom` writes, per patient, ``training/patientNNN/`` with ``Info.cfg``,
the whole cine series ``patientNNN_4d.nii.gz`` ``(X, Y, Z, T)`` int16, and the ED and
ES frames with their label maps (``_frameXX.nii.gz``, ``_frameXX_gt.nii.gz``: 0
background, 1 RV cavity, 2 LV myocardium, 3 LV cavity), plus ``phantom_truth.json``
with the clinical indices counted on the written label maps. The five ACDC groups
(NOR, MINF, DCM, HCM, RV) are assigned round-robin and drive the sampled volumes,
ejection fractions and wall thickness; everything else (matrix, spacing, pose,
intensities, bias field, noise) varies per patient. Geometry and rendering live in
:mod:`medssl.data.phantom_anatomy`.

The output is a pure function of ``(seed, patient index, n_frames)``: each patient
draws from its own generators ``default_rng([seed, index, stream])``, so the first k
patients are the same whatever the number asked for.

Reference for the dataset layout and groups: Bernard et al., "Deep Learning
Techniques for Automatic MRI Cardiac Multi-Structures Segmentation and Diagnosis:
Is the Problem Solved?", IEEE TMI 37(11), 2018.
"""

from __future__ import annotations

import json
import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType

import nibabel as nib
import numpy as np

from medssl.data import phantom_anatomy as anat
from medssl.data.nifti import from_slices, write_nifti

log = logging.getLogger(__name__)

GROUPS = ("NOR", "MINF", "DCM", "HCM", "RV")
MYOCARDIUM_DENSITY_G_PER_ML = 1.05
TRUTH_FILE = "phantom_truth.json"
#: Label values of the ACDC maps.
RV_LABEL, MYO_LABEL, LV_LABEL = 1, 2, 3
_STREAM_DESIGN, _STREAM_SCAN, _STREAM_LOOK, _STREAM_TEXTURE, _STREAM_NOISE = range(5)


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


@dataclass(frozen=True)
class PhantomTruth:
    """Ground truth of one phantom patient, counted on the written label maps.

    Attributes:
        patient_id: ``"patientNNN"``.
        group: ACDC group (NOR, MINF, DCM, HCM, RV).
        zooms_mm: voxel size ``(sx, sy, sz)`` of the NIfTI files.
        shape: ``(X, Y, Z, T)`` of the 4D file.
        ed_frame, es_frame: 1-based frame numbers.
        lv_edv_ml, lv_esv_ml, rv_edv_ml, rv_esv_ml: cavity volumes (voxels × voxel volume).
        lv_ef, rv_ef: ejection fractions (%).
        lv_mass_g: LV myocardium at ED × 1.05 g/ml.
        design: the sampled design targets (volumes, EFs, wall thickness...).
    """

    patient_id: str
    group: str
    zooms_mm: tuple[float, float, float]
    shape: tuple[int, int, int, int]
    ed_frame: int
    es_frame: int
    lv_edv_ml: float
    lv_esv_ml: float
    lv_ef: float
    rv_edv_ml: float
    rv_esv_ml: float
    rv_ef: float
    lv_mass_g: float
    design: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> PhantomTruth:
        values = dict(data)
        values["zooms_mm"] = tuple(float(v) for v in values["zooms_mm"])
        values["shape"] = tuple(int(v) for v in values["shape"])
        return cls(**values)


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


def generate_phantom(
    out: Path,
    patients: int = 20,
    seed: int = 0,
    *,
    n_frames: int | None = None,
    progress: bool = False,
    workers: int | None = None,
) -> list[PhantomTruth]:
    """Write a synthetic ACDC-layout dataset and its ground truth.

    Args:
        out: root folder; ``out/training/patientNNN/`` and ``out/phantom_truth.json``
            are written (existing files are overwritten).
        patients: number of patients, numbered from ``patient001``.
        seed: seed of every random choice; the same seed gives byte-identical files.
        n_frames: force the number of cine frames (at least 2); by default 12-20.
        progress: show a progress bar.
        workers: patients rendered in parallel threads (numpy and zlib release the
            GIL); default ``min(4, cpu_count)``. The output does not depend on it.

    Returns:
        The ground truth of each patient, in patient order.

    Raises:
        ValueError: on a non-positive ``patients`` or ``workers``, or ``n_frames`` below 2.
    """
    if patients < 1:
        raise ValueError(f"patients must be >= 1, got {patients}")
    if n_frames is not None and n_frames < 2:
        raise ValueError(f"n_frames must be >= 2 (ED and ES), got {n_frames}")
    workers = min(4, os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    out = Path(out)
    (out / "training").mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        jobs = pool.map(
            lambda i: _generate_patient(out / "training", i, seed, n_frames),
            range(1, patients + 1),
        )
        if progress:
            from tqdm import tqdm

            jobs = tqdm(jobs, total=patients, desc="phantom", unit="patient")
        truths = list(jobs)
    payload = {
        "seed": seed,
        "myocardium_density_g_per_ml": MYOCARDIUM_DENSITY_G_PER_ML,
        "patients": {t.patient_id: asdict(t) for t in truths},
    }
    (out / TRUTH_FILE).write_text(json.dumps(payload, indent=2) + "\n")
    log.info("wrote %d phantom patients (seed %d) to %s", patients, seed, out)
    return truths


def read_phantom_truth(path: Path) -> list[PhantomTruth]:
    """Read ``phantom_truth.json`` (or the folder holding it) back, in patient order."""
    path = Path(path)
    if path.is_dir():
        path = path / TRUTH_FILE
    data = json.loads(path.read_text())
    return [PhantomTruth.from_dict(v) for _, v in sorted(data["patients"].items())]


def _rng(seed: int, index: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, index, stream])


def _draw(rng: np.random.Generator, mean_sd: tuple[float, float]) -> float:
    """Normal draw truncated at two standard deviations."""
    return mean_sd[0] + mean_sd[1] * float(np.clip(rng.standard_normal(), -2.0, 2.0))


def sample_heart(group: str, rng: np.random.Generator) -> anat.HeartDesign:
    """Draw a heart design from the prior of ``group``."""
    prior = GROUP_PRIORS[group]
    lv_edv, lv_ef = _draw(rng, prior.lv_edv_ml), _draw(rng, prior.lv_ef)
    rv_edv, rv_ef = _draw(rng, prior.rv_edv_ml), _draw(rng, prior.rv_ef)
    rv_angle = math.pi + rng.uniform(0.05, 0.45)
    infarct = None
    if prior.infarct:
        infarct = anat.Infarct(
            angle=rv_angle + math.pi + rng.uniform(-1.4, 1.4),
            half_span=rng.uniform(0.55, 0.85),
            start_level=rng.uniform(0.1, 0.35),
            thinning=rng.uniform(0.45, 0.6),
        )
    return anat.HeartDesign(
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
    design: anat.HeartDesign, rng: np.random.Generator, n_frames: int | None = None
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
    bounds = anat.heart_bounds(design, first + slice_mm * np.arange(slices))
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


def sample_appearance(rng: np.random.Generator) -> anat.Appearance:
    """Draw per-patient intensities, contrast, bias field and noise level."""
    return anat.Appearance(
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


def sample_body(acq: Acquisition, rng: np.random.Generator) -> anat.BodyLayout:
    """Draw the thorax outline and organs around the heart (body coordinates, mm)."""
    half_w, half_d = rng.uniform(180.0, 225.0), rng.uniform(125.0, 155.0)
    angle = rng.uniform(-0.4, 0.4)
    fat_mm, muscle_mm = rng.uniform(6.0, 18.0), rng.uniform(8.0, 15.0)
    hp, hq = rng.uniform(-15.0, 25.0), rng.uniform(-35.0, -5.0)
    spine_q = hq + rng.uniform(70.0, 90.0)

    def organ(p, q, shift, axes, tilt, shrink, kind, wobble=10.0) -> anat.Organ:
        jitter = rng.uniform(-8.0, 8.0, size=4)
        axes = (axes[0] + jitter[2], axes[1] + jitter[3])
        return anat.Organ((p + jitter[0], q + jitter[1]), shift, axes, tilt, shrink, kind, wobble)

    organs = (
        organ(hp - 60, hq - 40, (15, 10), (75, 80), 0.5, 0.15, "lung"),
        organ(hp + 65, hq - 35, (-15, 10), (80, 90), -0.5, 0.15, "lung"),
        organ(hp - 40, hq + 100, (10, -55), (125, 65), 0.2, -0.1, "liver"),
        organ(hp + 90, hq + 90, (0, -35), (38, 28), 0.3, 0.0, "stomach", 5.0),
        anat.Organ((hp + 35, spine_q), (0, 0), (19, 17), 0.0, 0.0, "cortex"),
        anat.Organ((hp + 35, spine_q), (0, 0), (16, 14), 0.0, 0.0, "bone"),
        organ(hp + 5, spine_q - 15, (0, 0), (11, 11), 0.0, 0.0, "vessel", 0.0),
    )
    cos, sin = math.cos(angle), math.sin(angle)
    hx, hy = acq.heart_centre
    centre = (hx - (cos * hp - sin * hq), hy - (sin * hp + cos * hq))
    return anat.BodyLayout(centre, (half_w, half_d), angle, fat_mm, muscle_mm, organs)


def _heart_box(
    design: anat.HeartDesign, acq: Acquisition, x: np.ndarray, y: np.ndarray, z: np.ndarray
) -> tuple[slice, slice]:
    """Rows and columns that hold the heart and its organ clearance in every slice and frame."""
    drift = z / design.long_axis_mm
    bounds = anat.heart_bounds(design, z)
    margin = 8.0
    x_lo = np.min(acq.heart_centre[0] + acq.apex_drift[0] * drift + bounds[:, 0]) - margin
    x_hi = np.max(acq.heart_centre[0] + acq.apex_drift[0] * drift + bounds[:, 1]) + margin
    y_lo = np.min(acq.heart_centre[1] + acq.apex_drift[1] * drift + bounds[:, 2]) - margin
    y_hi = np.max(acq.heart_centre[1] + acq.apex_drift[1] * drift + bounds[:, 3]) + margin
    cols = np.searchsorted(x, [x_lo, x_hi])
    rows = np.searchsorted(y, [y_lo, y_hi])
    return slice(int(rows[0]), int(rows[1])), slice(int(cols[0]), int(cols[1]))


def _coil_gain(x: np.ndarray, y: np.ndarray, acq: Acquisition, look: anat.Appearance) -> np.ndarray:
    """Smooth coil sensitivity (1 at the heart) times off-resonance banding, ``(H, W)``."""
    xn, yn = x[None, :] / abs(x[0]), y[:, None] / abs(y[0])
    b = look.bias
    log_b = b[0] * xn + b[1] * yn + b[2] * xn**2 + b[3] * yn**2 + b[4] * xn * yn
    log_b = np.clip(log_b, -0.7, 0.7)
    i = int(np.argmin(np.abs(y - acq.heart_centre[1])))
    j = int(np.argmin(np.abs(x - acq.heart_centre[0])))
    hx, hy = acq.heart_centre
    bands = anat.banding(x[None, :] - hx, y[:, None] - hy, look)
    return (np.exp(log_b - log_b[i, j]) * bands).astype(np.float32)


def render_cine(
    design: anat.HeartDesign,
    acq: Acquisition,
    body: anat.BodyLayout,
    look: anat.Appearance,
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
    background = anat.render_body(x, y, z / design.long_axis_mm, body, look, rngs[0])
    rows, cols = _heart_box(design, acq, x, y, z)
    drift = z[:, None, None] / design.long_axis_mm
    dx = x[None, None, cols] - (acq.heart_centre[0] + acq.apex_drift[0] * drift)
    dy = y[None, rows, None] - (acq.heart_centre[1] + acq.apex_drift[1] * drift)
    view = anat.heart_view(design, dx, dy, z, acq.pixel_mm[1])
    box = background.crop(rows, cols)
    frame = anat.blur(anat.Canvas(background.outer, background.outer_fat).inked())
    gain = look.scale * _coil_gain(x, y, acq, look)
    cine = np.empty((acq.frames, *frame.shape), dtype=np.int16)
    labels = {}
    for t, c in enumerate(anat.contraction_curve(acq.frames, acq.es_index)):
        frame[:, rows, cols], label = anat.render_heart(box, design, look, view, float(c))
        cine[t] = anat.rician_int16(frame * gain, look.noise * look.scale, rngs[1])
        if t in (0, acq.es_index):
            labels[t] = np.zeros(frame.shape, dtype=np.uint8)
            labels[t][:, rows, cols] = label
    return cine, labels[0], labels[acq.es_index]


def _affine(acq: Acquisition) -> np.ndarray:
    """Voxel ``(X, Y, Z)`` to scanner mm: a rotated slice stack centred near the isocentre."""
    a, b, g = acq.rotation
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(g), -math.sin(g), 0], [math.sin(g), math.cos(g), 0], [0, 0, 1]])
    linear = rz @ ry @ rx @ np.diag(acq.zooms)
    centre = (np.array([acq.cols, acq.rows, acq.slices], dtype=np.float64) - 1.0) / 2.0
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = -linear @ centre
    return affine


def _info_cfg(group: str, acq: Acquisition, rng: np.random.Generator) -> str:
    height = float(np.clip(rng.normal(172.0, 9.0), 150.0, 200.0))
    weight = float(np.clip(rng.normal(78.0, 14.0), 45.0, 140.0))
    lines = [
        "ED: 1",
        f"ES: {acq.es_index + 1}",
        f"Group: {group}",
        f"Height: {height:.1f}",
        f"NbFrame: {acq.frames}",
        f"Weight: {weight:.1f}",
    ]
    return "\n".join(lines) + "\n"


def _truth(
    pid: str,
    group: str,
    design: anat.HeartDesign,
    acq: Acquisition,
    ed: np.ndarray,
    es: np.ndarray,
) -> PhantomTruth:
    """Clinical indices counted on the written label maps."""
    voxel_ml = float(np.prod(acq.zooms)) / 1000.0

    def volume(label: np.ndarray, value: int) -> float:
        return int(np.count_nonzero(label == value)) * voxel_ml

    lv_edv, lv_esv = volume(ed, LV_LABEL), volume(es, LV_LABEL)
    rv_edv, rv_esv = volume(ed, RV_LABEL), volume(es, RV_LABEL)
    targets = {
        "lv_edv_ml": design.lv_edv_ml,
        "lv_ef": design.lv_ef,
        "rv_edv_ml": design.rv_edv_ml,
        "rv_ef": design.rv_ef,
        "wall_mm": design.wall_mm,
        "long_axis_mm": design.long_axis_mm,
        "infarct_thinning": design.infarct.thinning if design.infarct else 0.0,
    }
    return PhantomTruth(
        patient_id=pid,
        group=group,
        zooms_mm=acq.zooms,
        shape=(acq.cols, acq.rows, acq.slices, acq.frames),
        ed_frame=1,
        es_frame=acq.es_index + 1,
        lv_edv_ml=lv_edv,
        lv_esv_ml=lv_esv,
        lv_ef=100.0 * (lv_edv - lv_esv) / lv_edv,
        rv_edv_ml=rv_edv,
        rv_esv_ml=rv_esv,
        rv_ef=100.0 * (rv_edv - rv_esv) / rv_edv,
        lv_mass_g=volume(ed, MYO_LABEL) * MYOCARDIUM_DENSITY_G_PER_ML,
        design={k: float(v) for k, v in targets.items()},
    )


def _generate_patient(root: Path, index: int, seed: int, n_frames: int | None) -> PhantomTruth:
    """Sample, render and write one patient; returns its truth."""
    pid = f"patient{index:03d}"
    group = GROUPS[(index - 1) % len(GROUPS)]
    design = sample_heart(group, _rng(seed, index, _STREAM_DESIGN))
    scan_rng = _rng(seed, index, _STREAM_SCAN)
    acq = sample_acquisition(design, scan_rng, n_frames)
    look_rng = _rng(seed, index, _STREAM_LOOK)
    look, body = sample_appearance(look_rng), sample_body(acq, look_rng)
    rngs = (_rng(seed, index, _STREAM_TEXTURE), _rng(seed, index, _STREAM_NOISE))
    cine, label_ed, label_es = render_cine(design, acq, body, look, rngs)
    folder = root / pid
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Info.cfg").write_text(_info_cfg(group, acq, scan_rng))
    affine = _affine(acq)
    _write_cine(folder / f"{pid}_4d.nii.gz", cine, affine, acq)
    for t, label in ((0, label_ed), (acq.es_index, label_es)):
        stem = f"{pid}_frame{t + 1:02d}"
        write_nifti(folder / f"{stem}.nii.gz", from_slices(cine[t]), affine, dtype=np.int16)
        write_nifti(folder / f"{stem}_gt.nii.gz", from_slices(label), affine, dtype=np.uint8)
    truth = _truth(pid, group, design, acq, label_ed, label_es)
    log.debug(
        "%s %s LV EDV %.0f ml EF %.0f%%, RV EDV %.0f ml EF %.0f%%, mass %.0f g",
        pid,
        group,
        truth.lv_edv_ml,
        truth.lv_ef,
        truth.rv_edv_ml,
        truth.rv_ef,
        truth.lv_mass_g,
    )
    return truth


def _write_cine(path: Path, cine: np.ndarray, affine: np.ndarray, acq: Acquisition) -> None:
    """Write ``(T, Z, Y, X)`` as NIfTI ``(X, Y, Z, T)`` with zooms ``(sx, sy, sz, dt)``."""
    data = np.transpose(cine, (3, 2, 1, 0))  # Fortran-ordered view: NIfTI's on-disk order
    header = nib.Nifti1Header()
    header.set_data_shape(data.shape)
    header.set_zooms((*acq.zooms, acq.frame_s))
    write_nifti(path, data, affine, header=header, dtype=np.int16)
