"""Tiny on-the-fly datasets in every supported layout, for tests.

Volumes are small (a few slices of 24x20 pixels) so that a test builds a whole
source in milliseconds; they carry a square 'LV', a ring 'MYO' and a bar 'RV' so the
label set is complete.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from medssl.data.nifti import from_slices, write_nifti

SHAPE = (4, 24, 20)  # (slices, H, W)
SPACING = (10.0, 1.5, 1.25)  # (slice, row, col) mm


def affine_for(spacing: tuple[float, float, float] = SPACING) -> np.ndarray:
    """NIfTI affine for medssl spacing ``(slice, row, col)`` = zooms ``(sx, sy, sz)`` reversed."""
    return np.diag([spacing[2], spacing[1], spacing[0], 1.0])


def make_volume(seed: int, shape: tuple[int, int, int] = SHAPE) -> tuple[np.ndarray, np.ndarray]:
    """A ``(S, H, W)`` float32 image and uint8 label with all four ACDC classes."""
    rng = np.random.default_rng(seed)
    _s, h, w = shape
    label = np.zeros(shape, dtype=np.uint8)
    cy, cx = h // 2, w // 2
    label[:, cy - 5 : cy + 5, cx - 5 : cx + 5] = 2
    label[:, cy - 3 : cy + 3, cx - 3 : cx + 3] = 3
    label[:, cy - 5 : cy + 5, max(cx - 8, 0) : cx - 5] = 1
    image = (100 + 200 * (label == 3) + 150 * (label == 1) + 60 * (label == 2)).astype(np.float32)
    image += rng.normal(0, 10, shape).astype(np.float32)
    return image, label


def write_pair(
    img_path: Path, gt_path: Path | None, seed: int, shape: tuple[int, int, int] = SHAPE
) -> None:
    image, label = make_volume(seed, shape)
    write_nifti(img_path, from_slices(image), affine_for(), dtype=np.int16)
    if gt_path is not None:
        write_nifti(gt_path, from_slices(label), affine_for(), dtype=np.uint8)


def make_acdc(
    root: Path,
    n_patients: int = 3,
    n_frames: int = 5,
    ed: int = 1,
    es: int = 3,
    series: bool = True,
    split: str = "training",
) -> Path:
    """Official ACDC layout: Info.cfg, ED/ES frames with _gt, optional _4d series."""
    for p in range(1, n_patients + 1):
        pid = f"patient{p:03d}"
        pdir = root / split / pid
        pdir.mkdir(parents=True)
        (pdir / "Info.cfg").write_text(
            f"ED: {ed}\nES: {es}\nGroup: NOR\nHeight: 180.0\nNbFrame: {n_frames}\nWeight: 75.0\n"
        )
        for frame in (ed, es):
            write_pair(
                pdir / f"{pid}_frame{frame:02d}.nii.gz",
                pdir / f"{pid}_frame{frame:02d}_gt.nii.gz",
                seed=p * 100 + frame,
            )
        if series:
            frames = [make_volume(p * 100 + t + 1)[0] for t in range(n_frames)]
            data = np.stack([from_slices(f) for f in frames], axis=-1)
            write_nifti(pdir / f"{pid}_4d.nii.gz", data, affine_for(), dtype=np.int16)
    return root


def make_h5(root: Path, n_patients: int = 3, frames: tuple[int, int] = (1, 12)) -> Path:
    """Preprocessed h5 layout: ``patientXXX_frameYY.h5`` with image/label (no spacing)."""
    root.mkdir(parents=True, exist_ok=True)
    for p in range(1, n_patients + 1):
        for frame in frames:
            image, label = make_volume(p * 100 + frame)
            with h5py.File(root / f"patient{p:03d}_frame{frame:02d}.h5", "w") as fh:
                fh["image"] = image / image.max()
                fh["label"] = label
    return root


def make_nnunet(root: Path, n_cases: int = 3, n_test: int = 1) -> Path:
    """nnU-Net v2 raw dataset with imagesTr/labelsTr and imagesTs."""
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for c in range(1, n_cases + 1):
        cid = f"case_{c:03d}"
        write_pair(root / "imagesTr" / f"{cid}_0000.nii.gz", root / "labelsTr" / f"{cid}.nii.gz", c)
    for c in range(1, n_test + 1):
        write_pair(root / "imagesTs" / f"test_{c:03d}_0000.nii.gz", None, 1000 + c)
    spec = {
        "channel_names": {"0": "MRI"},
        "labels": {"background": 0, "RV": 1, "MYO": 2, "LV": 3},
        "numTraining": n_cases,
        "file_ending": ".nii.gz",
    }
    (root / "dataset.json").write_text(json.dumps(spec))
    return root


def make_nifti_folder(root: Path, n: int = 2, with_4d: bool = True) -> Path:
    """Plain folder of unlabelled 3D volumes (and one 4D series)."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        write_pair(root / f"scan{i}.nii.gz", None, 500 + i)
    if with_4d:
        data = np.stack([from_slices(make_volume(600 + t)[0]) for t in range(3)], axis=-1)
        write_nifti(root / "cine.nii.gz", data, affine_for(), dtype=np.int16)
    return root
