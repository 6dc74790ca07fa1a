"""Post-processing as nnU-Net does it: keep only the largest connected component of a
structure, and only where that improves the validation metric.

A network's label map often holds stray islands far from the heart; each one costs
little Dice but dominates HD95. nnU-Net (``determine_postprocessing`` of nnU-Net v2)
removes all but the largest connected component of a label and keeps that step for the
labels where it raises the mean validation Dice. medssl does the same, per structure, on
the run's validation volumes with its best model:

* components are 3D with full connectivity (26-neighbourhood; ``scipy.ndimage.label``);
  removed voxels become background;
* a structure is post-processed when its mean 3D Dice over the validation volumes is
  strictly higher with the step than without (ties: left alone, as nnU-Net);
* the decision and both Dice values per structure are saved in the run directory
  (``postprocessing.json``), so ``evaluate`` and ``predict`` apply exactly what was
  decided on validation, never on the test set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from medssl.artifacts.atomic import read_json, write_json
from medssl.evaluation.metrics import class_name

#: full 3D connectivity (faces, edges and corners)
_STRUCTURE = np.ones((3, 3, 3), dtype=bool)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """``mask`` with all but its largest connected component removed (full connectivity;
    of equally large components the first in scan order is kept)."""
    mask = np.asarray(mask, dtype=bool)
    structure = _STRUCTURE if mask.ndim == 3 else np.ones((3,) * mask.ndim, dtype=bool)
    labels, n = ndimage.label(mask, structure=structure)
    if n <= 1:
        return mask.copy()
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (int(np.argmax(sizes)) + 1)


def keep_largest(pred: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """A copy of the label map ``pred`` where each of ``labels`` keeps only its largest
    connected component; the removed voxels become background (0)."""
    out = np.array(pred, copy=True)
    for c in labels:
        region = out == c
        if region.any():
            out[region & ~largest_component(region)] = 0
    return out


def dice(pred: np.ndarray, truth: np.ndarray, c: int) -> float:
    """3D Dice of label ``c`` (1.0 when absent from both, the metrics' convention)."""
    p, g = pred == c, truth == c
    total = int(p.sum()) + int(g.sum())
    return 1.0 if total == 0 else 2.0 * int((p & g).sum()) / total


@dataclass(frozen=True)
class PostProcessing:
    """Which labels keep only their largest component, and why.

    Attributes:
        labels: label values post-processed.
        per_class: per structure name: ``label``, validation mean Dice ``without`` and
            ``with`` the step, and whether it is ``applied``.
        split: the patients it was decided on (``val``).
        volumes: number of volumes it was decided on.
    """

    labels: tuple[int, ...] = ()
    per_class: dict[str, dict] = field(default_factory=dict)
    split: str = "val"
    volumes: int = 0

    def apply(self, pred: np.ndarray) -> np.ndarray:
        return keep_largest(pred, self.labels)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["labels"] = list(self.labels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PostProcessing:
        return cls(
            tuple(int(x) for x in d["labels"]),
            dict(d.get("per_class", {})),
            d.get("split", "val"),
            int(d.get("volumes", 0)),
        )

    def save(self, path: str | Path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> PostProcessing:
        return cls.from_dict(read_json(path))


def decide(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    classes: Sequence[int],
    names: Mapping[int, str] | None = None,
    split: str = "val",
) -> PostProcessing:
    """Decide per label whether keeping its largest component raises the mean Dice over
    ``pairs`` of ``(prediction, truth)`` label maps (see the module docstring)."""
    chosen, table = [], {}
    for c in classes:
        without = float(np.mean([dice(p, t, c) for p, t in pairs])) if pairs else float("nan")
        with_ = (
            float(np.mean([dice(keep_largest(p, (c,)), t, c) for p, t in pairs]))
            if pairs
            else float("nan")
        )
        applied = bool(pairs) and with_ > without
        if applied:
            chosen.append(int(c))
        table[class_name(c, names)] = {
            "label": int(c),
            "without": without,
            "with": with_,
            "applied": applied,
        }
    return PostProcessing(tuple(chosen), table, split, len(pairs))
