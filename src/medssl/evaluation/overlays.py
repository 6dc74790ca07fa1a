"""PNG overlays of image, ground truth and prediction (the study's Figure 7 layout)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap

#: Colours of RV, MYO, LV (and further classes) in overlays.
CLASS_COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0"]


def _overlay(ax, image: np.ndarray, label: np.ndarray | None, title: str, n_classes: int) -> None:
    ax.imshow(image, cmap="gray", interpolation="nearest")
    if label is not None:
        masked = np.ma.masked_where(label == 0, label)
        cmap = ListedColormap(CLASS_COLOURS[: max(1, n_classes - 1)])
        ax.imshow(
            masked,
            cmap=cmap,
            vmin=1,
            vmax=max(1, n_classes - 1),
            alpha=0.45,
            interpolation="nearest",
        )
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def representative_slices(label: np.ndarray | None, n_slices: int, k: int = 3) -> list[int]:
    """Up to ``k`` slice indices spread over the labelled extent (base, mid, apex)."""
    if label is not None and label.any():
        rows = np.flatnonzero(label.reshape(label.shape[0], -1).any(1))
        lo, hi = int(rows[0]), int(rows[-1])
    else:
        lo, hi = 0, n_slices - 1
    return sorted({round(v) for v in np.linspace(lo, hi, k)})


def save_overlay(
    path: str | Path,
    image: np.ndarray,
    prediction: np.ndarray,
    truth: np.ndarray | None = None,
    title: str = "",
    n_classes: int = 4,
) -> Path:
    """Write a PNG: for 3 representative slices, image | ground truth | prediction.

    Args:
        path: output PNG.
        image: ``(S, H, W)`` intensities.
        prediction: ``(S, H, W)`` predicted labels.
        truth: ``(S, H, W)`` ground-truth labels, or ``None`` (column omitted).
        title: figure title.
        n_classes: number of classes including background.
    """
    rows = representative_slices(truth if truth is not None else prediction, image.shape[0])
    cols = 3 if truth is not None else 2
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.2 * cols, 2.2 * len(rows)), squeeze=False)
    for r, k in enumerate(rows):
        _overlay(axes[r, 0], image[k], None, f"slice {k}", n_classes)
        if truth is not None:
            _overlay(axes[r, 1], image[k], truth[k], "ground truth", n_classes)
        _overlay(axes[r, cols - 1], image[k], prediction[k], "prediction", n_classes)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
