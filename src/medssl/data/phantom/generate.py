"""Synthetic short-axis cardiac cine-MRI in the official ACDC layout.

:func:`generate_phantom` writes, per patient, ``training/patientNNN/`` with ``Info.cfg``,
the whole cine series ``patientNNN_4d.nii.gz`` ``(X, Y, Z, T)`` int16, and the ED and
ES frames with their label maps (``_frameXX.nii.gz``, ``_frameXX_gt.nii.gz``: 0
background, 1 RV cavity, 2 LV myocardium, 3 LV cavity), plus ``phantom_truth.json``
with the clinical indices counted on the written label maps. The five ACDC groups
(NOR, MINF, DCM, HCM, RV) are assigned round-robin and drive the sampled volumes,
ejection fractions and wall thickness; everything else (matrix, spacing, pose,
intensities, bias field, noise) varies per patient. The pieces live in their own
modules: priors and draws in :mod:`~medssl.data.phantom.sampling`, rendering in
:mod:`~medssl.data.phantom.render` (heart in :mod:`~medssl.data.phantom.heart` and
:mod:`~medssl.data.phantom.rv`, background in :mod:`~medssl.data.phantom.body`, image
formation in :mod:`~medssl.data.phantom.imaging`); this module writes the files and
the truth.

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

import nibabel as nib
import numpy as np

from medssl.artifacts.labels import ACDC_LABELS
from medssl.data.clinical import MYOCARDIUM_DENSITY_G_PER_ML, clinical_indices
from medssl.data.nifti import from_slices, write_nifti
from medssl.data.phantom.heart import HeartDesign
from medssl.data.phantom.render import Acquisition, render_cine
from medssl.data.phantom.sampling import (
    GROUP_PRIORS,
    GROUPS,
    GroupPrior,
    sample_acquisition,
    sample_appearance,
    sample_body,
    sample_heart,
)

__all__ = [
    "GROUPS",
    "GROUP_PRIORS",
    "LV_LABEL",
    "MYOCARDIUM_DENSITY_G_PER_ML",
    "MYO_LABEL",
    "RV_LABEL",
    "TRUTH_FILE",
    "Acquisition",
    "GroupPrior",
    "PhantomTruth",
    "generate_phantom",
    "read_phantom_truth",
    "render_cine",
    "sample_acquisition",
    "sample_appearance",
    "sample_body",
    "sample_heart",
]

log = logging.getLogger(__name__)

TRUTH_FILE = "phantom_truth.json"
#: The phantom's label set (ACDC's) and its values.
LABELS = ACDC_LABELS
RV_LABEL, MYO_LABEL, LV_LABEL = (
    LABELS.roles[r] for r in ("rv_cavity", "lv_myocardium", "lv_cavity")
)
_STREAM_DESIGN, _STREAM_SCAN, _STREAM_LOOK, _STREAM_TEXTURE, _STREAM_NOISE = range(5)


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
    design: HeartDesign,
    acq: Acquisition,
    ed: np.ndarray,
    es: np.ndarray,
) -> PhantomTruth:
    """Clinical indices counted on the written label maps, by the maths evaluation uses
    (:func:`medssl.data.clinical.clinical_indices`)."""
    # (Z, Y, X) label maps: spacing (slice, row, col) = zooms (sx, sy, sz) reversed
    idx = clinical_indices(ed, es, tuple(reversed(acq.zooms)), LABELS)
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
        lv_edv_ml=idx["LV_EDV"],
        lv_esv_ml=idx["LV_ESV"],
        lv_ef=idx["LV_EF"],
        rv_edv_ml=idx["RV_EDV"],
        rv_esv_ml=idx["RV_ESV"],
        rv_ef=idx["RV_EF"],
        lv_mass_g=idx["MYO_mass"],
        design={k: float(v) for k, v in targets.items()},
    )


def _write_cine(path: Path, cine: np.ndarray, affine: np.ndarray, acq: Acquisition) -> None:
    """Write ``(T, Z, Y, X)`` as NIfTI ``(X, Y, Z, T)`` with zooms ``(sx, sy, sz, dt)``."""
    data = np.transpose(cine, (3, 2, 1, 0))  # Fortran-ordered view: NIfTI's on-disk order
    header = nib.Nifti1Header()
    header.set_data_shape(data.shape)
    header.set_zooms((*acq.zooms, acq.frame_s))
    write_nifti(path, data, affine, header=header, dtype=np.int16)
