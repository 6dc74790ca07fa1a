"""Draw basal/mid/apical slices of the synthetic cine-MRI phantom at ED and ES.

Usage: ``python benchmarks/make_phantom_figure.py docs/img/phantom.png [--seed 1]``

One patient per ACDC group (NOR, MINF, DCM, HCM, RV), two rows each: the whole
field of view at the mid slice (ED, ES), then crops around the heart at the basal,
mid and apical slices at ED and ES, in grayscale above and with the label contours
below (RV red, myocardium green, LV cavity blue). Prints the time taken and the
clinical indices of each patient.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from medssl.data.nifti import read_nifti, to_slices
from medssl.data.phantom import GROUPS, PhantomTruth, generate_phantom

CONTOUR_COLOURS = {1: "#ff4040", 2: "#40ff40", 3: "#4080ff"}


def load_frame(root: Path, truth: PhantomTruth, frame: int) -> tuple[np.ndarray, np.ndarray]:
    """``(Z, Y, X)`` image and label of one labelled frame."""
    stem = root / "training" / truth.patient_id / f"{truth.patient_id}_frame{frame:02d}"
    image = to_slices(read_nifti(Path(f"{stem}.nii.gz")).data)
    label = to_slices(read_nifti(Path(f"{stem}_gt.nii.gz"), as_label=True).data)
    return image, label


def pick_slices(label: np.ndarray) -> list[int]:
    """Basal, mid and apical slice indices among the slices with an LV cavity."""
    present = np.flatnonzero((label == 3).reshape(label.shape[0], -1).any(axis=1))
    first, last = int(present[0]), int(present[-1])
    return [first, (first + last) // 2, last]


def heart_crop(label: np.ndarray, margin: int = 22) -> tuple[slice, slice]:
    rows, cols = np.nonzero((label > 0).any(axis=0))
    centre_r, centre_c = (rows.min() + rows.max()) // 2, (cols.min() + cols.max()) // 2
    half = max(rows.max() - rows.min(), cols.max() - cols.min()) // 2 + margin
    return (
        slice(max(centre_r - half, 0), centre_r + half),
        slice(max(centre_c - half, 0), centre_c + half),
    )


def draw_patient(axes: np.ndarray, root: Path, truth: PhantomTruth) -> None:
    """Fill two rows of seven axes.

    Column 0: the whole field of view at the mid slice (ED above, ES below). Columns
    1-6: crops at basal, mid and apical slices at ED then ES, plain above and with the
    label contours below.
    """
    ed_image, ed_label = load_frame(root, truth, truth.ed_frame)
    es_image, es_label = load_frame(root, truth, truth.es_frame)
    slices = pick_slices(ed_label)
    crop = heart_crop(ed_label)
    vmax = float(np.percentile(ed_image, 99.7))
    style = {"cmap": "gray", "vmin": 0, "vmax": vmax, "interpolation": "nearest"}
    for row, (phase, image) in enumerate((("ED", ed_image), ("ES", es_image))):
        axes[row, 0].imshow(image[slices[1]], **style)
        axes[row, 0].set_title(f"{truth.patient_id} {truth.group} {phase} full FOV", fontsize=8)
    col = 1
    for phase, image, label in (("ED", ed_image, ed_label), ("ES", es_image, es_label)):
        for name, k in zip(("base", "mid", "apex"), slices, strict=True):
            top, bottom = axes[0, col], axes[1, col]
            top.imshow(image[k][crop], **style)
            top.set_title(f"{phase} {name} (slice {k})", fontsize=8)
            bottom.imshow(image[k][crop], **style)
            for value, colour in CONTOUR_COLOURS.items():
                mask = (label[k][crop] == value).astype(float)
                if mask.any():
                    bottom.contour(mask, levels=[0.5], colors=[colour], linewidths=0.8)
            col += 1
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_png", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        truths = generate_phantom(root, patients=len(GROUPS), seed=args.seed)
        print(f"generated {len(truths)} patients in {time.perf_counter() - start:.1f} s")
        fig, axes = plt.subplots(2 * len(truths), 7, figsize=(17, 5.0 * len(truths)))
        for i, truth in enumerate(truths):
            draw_patient(axes[2 * i : 2 * i + 2], root, truth)
            print(
                f"{truth.patient_id} {truth.group:4s} LV EDV {truth.lv_edv_ml:5.0f} ml "
                f"EF {truth.lv_ef:4.0f}%  RV EDV {truth.rv_edv_ml:5.0f} ml EF {truth.rv_ef:4.0f}%"
                f"  mass {truth.lv_mass_g:4.0f} g  matrix {truth.shape}"
            )
        fig.tight_layout()
        args.out_png.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.out_png, dpi=70)
    print(f"wrote {args.out_png}")


if __name__ == "__main__":
    main()
