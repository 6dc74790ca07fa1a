"""Test evaluation of a fine-tuning run: 2D (the study's), 3D (ACDC) and clinical metrics.

Writes into the run directory:

* ``metrics.json`` — aggregate figures: per-slice 2D IoU per class and mean, Jaccard
  loss; per phase (ED/ES) and structure the mean 3D Dice, HD95 and ASSD with their
  units (``mm``, or ``px`` when the source has no spacing); clinical-index errors.
* ``per_case.csv`` — one row per test volume.
* ``clinical.csv`` — per patient: predicted and reference indices and their errors
  (only when spacing is known), plus the phantom's stored truth when present.
* ``overlays/*.png`` — image / ground truth / prediction for a few test volumes.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from medssl.data.cache_index import SliceCache
from medssl.data.splits import Split
from medssl.evaluation.clinical import clinical_indices, index_errors
from medssl.evaluation.inference import predict_logits
from medssl.evaluation.metrics import (
    class_means,
    iou_2d,
    soft_jaccard_loss_from_logits,
    volume_metrics,
)
from medssl.evaluation.overlays import save_overlay
from medssl.evaluation.run_model import RunModel, load_run_model

log = logging.getLogger(__name__)


def _volume_row(
    model: RunModel, cache: SliceCache, vid: int, classes: tuple[int, ...]
) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    vol = cache.volumes[vid]
    rows = cache.volume_slices(vid)
    image = torch.from_numpy(np.stack([cache.image(k) for k in rows]))
    truth = np.stack([cache.label(k) for k in rows])
    logits = predict_logits(model.model, image, precision=model.precision)
    pred = logits.argmax(1).numpy().astype(np.uint8)
    jac = float(soft_jaccard_loss_from_logits(logits, torch.from_numpy(truth).long(), classes))
    ious = iou_2d(pred, truth, classes)
    vm = volume_metrics(pred, truth, vol.spacing, classes)
    row = {
        "patient": vol.patient,
        "phase": vol.phase,
        "frame": vol.frame,
        "slices": vol.n_slices,
        "jaccard_loss": jac,
        "units": vm.units,
        **{f"slice_iou_{k}": v for k, v in class_means(ious, classes).items()},
        **vm.flat(),
    }
    return row, ious, pred, truth


def evaluate(run_dir: str | Path, split: str = "test", overlays: int = 4) -> dict:
    """Evaluate the best model of a fine-tuning run on a patient split.

    Args:
        run_dir: fine-tuning run directory.
        split: ``test`` (default), ``val`` or ``train``.
        overlays: number of volumes to draw as PNG overlays.

    Returns:
        The aggregate metrics (also written to ``metrics.json``).
    """
    model = load_run_model(run_dir)
    cache = SliceCache.open(model.cache)
    patients = set(Split.load(model.run_dir / "split.json").of(split))
    classes = tuple(range(1, model.num_classes))
    rows, all_ious, labels = [], [], {}
    for vid, vol in enumerate(cache.volumes):
        if not vol.labelled or vol.patient not in patients:
            continue
        row, ious, pred, truth = _volume_row(model, cache, vid, classes)
        rows.append(row)
        all_ious.append(ious)
        labels[(vol.patient, vol.phase)] = (pred, truth, vol)
        if len(rows) <= overlays:
            image = np.stack([cache.image(k) for k in cache.volume_slices(vid)])
            save_overlay(
                model.run_dir / "overlays" / f"{vol.patient}_{vol.phase}.png",
                image,
                pred,
                truth,
                f"{vol.patient} {vol.phase}",
                model.num_classes,
            )
    if not rows:
        raise ValueError(f"{run_dir}: no labelled volumes of the {split} split in {cache.path}")
    clinical = _clinical(labels, _phantom_truth(cache))
    metrics = _aggregate(rows, np.concatenate(all_ious), classes, clinical, split)
    _write_csv(model.run_dir / "per_case.csv", rows)
    if clinical:
        _write_csv(model.run_dir / "clinical.csv", clinical)
    (model.run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics


def _phantom_truth(cache: SliceCache) -> dict | None:
    path = Path(cache.manifest["source_root"]) / "phantom_truth.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return data.get("patients", data) if isinstance(data, dict) else None


#: Clinical index names → keys of the phantom's ``phantom_truth.json``.
PHANTOM_KEYS = {
    "LV_EDV": "lv_edv_ml",
    "LV_ESV": "lv_esv_ml",
    "LV_EF": "lv_ef",
    "RV_EDV": "rv_edv_ml",
    "RV_ESV": "rv_esv_ml",
    "RV_EF": "rv_ef",
    "MYO_mass": "lv_mass_g",
}


def _clinical(labels: dict, phantom: dict | None) -> list[dict]:
    out = []
    for pid in sorted({p for p, _ in labels}):
        if (pid, "ED") not in labels or (pid, "ES") not in labels:
            continue
        (p_ed, t_ed, vol), (p_es, t_es, _) = labels[(pid, "ED")], labels[(pid, "ES")]
        if vol.spacing is None:
            continue
        pred, ref = (
            clinical_indices(p_ed, p_es, vol.spacing),
            clinical_indices(t_ed, t_es, vol.spacing),
        )
        row = {
            "patient": pid,
            **{f"pred_{k}": v for k, v in pred.items()},
            **{f"ref_{k}": v for k, v in ref.items()},
            **index_errors(pred, ref),
        }
        truth = (phantom or {}).get(pid)
        if isinstance(truth, dict):
            known = {k: float(truth[v]) for k, v in PHANTOM_KEYS.items() if v in truth}
            row.update({f"phantom_{k}": v for k, v in known.items()})
            row.update({f"phantom_{k}_abs_error": abs(pred[k] - v) for k, v in known.items()})
        out.append(row)
    return out


def _aggregate(
    rows: list[dict], ious: np.ndarray, classes: tuple[int, ...], clinical: list[dict], split: str
) -> dict:
    def mean(key: str, subset: list[dict]) -> float:
        vals = [r[key] for r in subset if key in r and not math.isnan(r[key])]
        return float(np.mean(vals)) if vals else float("nan")

    by_phase: dict[str, dict] = defaultdict(dict)
    structures = [k[: -len("_dice")] for k in rows[0] if k.endswith("_dice")]
    for phase in sorted({r["phase"] for r in rows}):
        subset = [r for r in rows if r["phase"] == phase]
        for s in structures:
            by_phase[phase][s] = {m: mean(f"{s}_{m}", subset) for m in ("dice", "hd95", "assd")}
        by_phase[phase]["mean_dice"] = float(
            np.mean([by_phase[phase][s]["dice"] for s in structures])
        )
    dice_all = float(np.mean([mean(f"{s}_dice", rows) for s in structures]))
    metrics = {
        "split": split,
        "volumes": len(rows),
        "slices": int(ious.shape[0]),
        "slice_iou": class_means(ious, classes),
        "jaccard_loss": mean("jaccard_loss", rows),
        "dice_3d": {s: mean(f"{s}_dice", rows) for s in structures} | {"mean": dice_all},
        "by_phase": by_phase,
        "distance_units": rows[0]["units"],
    }
    if clinical:
        keys = [k for k in clinical[0] if k.endswith("_abs_error") and not k.startswith("phantom_")]
        metrics["clinical_mean_abs_error"] = {
            k[: -len("_abs_error")]: mean(k, clinical) for k in keys
        }
        truth_keys = [
            k for k in clinical[0] if k.startswith("phantom_") and k.endswith("_abs_error")
        ]
        if truth_keys:
            metrics["clinical_mean_abs_error_vs_phantom_truth"] = {
                k[len("phantom_") : -len("_abs_error")]: mean(k, clinical) for k in truth_keys
            }
    return metrics


def _write_csv(path: Path, rows: list[dict]) -> None:
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


__all__ = ["evaluate"]
