"""Test evaluation of a fine-tuning run: the study's 2D metrics, medssl's foreground 2D
metrics, ACDC-standard 3D metrics and clinical indices.

Writes into the run directory:

* ``metrics.json`` — aggregate figures, always both families:

  - **the study's** (Kalapos & Gyires-Tóth 2022, ``inference_acdc.py``):
    ``paper_iou`` / ``paper_jaccard_loss`` — per slice, all classes *including
    background*, a class absent from both prediction and target scoring 1.0, on the
    slice padded top-left to 224 × 224 like the original, mean over all slices (with
    ``paper_iou_std`` / ``paper_jaccard_loss_std``, ``paper_class_iou`` per class with
    absent-from-both left out, and ``paper_protocol`` describing it);
  - **foreground mean IoU (medssl)**: ``slice_iou`` per foreground class and mean
    (classes absent from both left out), ``jaccard_loss`` (soft Jaccard over the
    foreground classes per volume), on the unpadded slices;
  - **ACDC-standard 3D**: per phase (ED/ES) and structure the mean 3D Dice, HD95 and
    ASSD (``by_phase``, ``dice_3d``) with their units (``mm``, or ``px`` when the
    source has no spacing); clinical-index errors.
  - ``postprocessed``: the same 3D metrics and 2D IoU after nnU-Net's largest-component
    post-processing of the structures where it raised the validation Dice
    (:mod:`medssl.evaluation.postprocess`; decided once per run on its validation
    volumes and saved as ``postprocessing.json``).
* ``per_case.csv`` — one row per test volume (post-processed metrics prefixed ``pp_``).
* ``clinical.csv`` — per patient: predicted and reference indices and their errors
  (only when spacing is known), plus the phantom's stored truth when present.
* ``overlays/*.png`` — image / ground truth / prediction for a few test volumes.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from medssl.artifacts.labels import LabelSet
from medssl.artifacts.rundir import RunDir
from medssl.data.cache_read import SliceCache
from medssl.data.splits import OFFICIAL_TEST, official_test_patients
from medssl.evaluation.clinical import clinical_indices, index_errors, label_volumes_ml
from medssl.evaluation.inference import predict_logits
from medssl.evaluation.metrics import (
    PAPER_PAD_TO,
    class_means,
    iou_2d,
    pad_like_paper,
    paper_class_ious,
    paper_slice_jaccard_loss,
    soft_jaccard_loss_from_logits,
    volume_metrics,
)
from medssl.evaluation.overlays import save_overlay
from medssl.evaluation.postprocess import PostProcessing, decide
from medssl.evaluation.run_model import RunModel, load_run_model

log = logging.getLogger(__name__)

#: What ``paper_iou`` / ``paper_jaccard_loss`` are (copied into ``metrics.json``).
PAPER_PROTOCOL = (
    "Kalapos & Gyires-Toth 2022 (kaland313/SSL-MedSeg inference_acdc.py): per 2D slice, "
    "IoU averaged over all classes including background, a class absent from both "
    "prediction and target scores 1.0 (torchmetrics iou absent_score=1.0); loss = smp "
    "JaccardLoss(mode='multiclass', classes=None, from_logits=True) per slice; slices "
    f"padded top-left to {PAPER_PAD_TO}x{PAPER_PAD_TO} (image with the normalised value of "
    "raw intensity 0, label with background) and scored on the padded slice; mean over "
    "all slices"
)


def raw_zero_value(norm_stats: dict, norm: str) -> float:
    """The normalised value of raw intensity 0 in a volume normalised with ``norm_stats``.

    The original pads the raw image with 0 *before* normalising; the cache holds
    normalised slices, so padding uses what 0 becomes under the volume's own
    normalisation (clipped to the volume's clip range like every other voxel).
    """
    low, high = float(norm_stats["low"]), float(norm_stats["high"])
    zero = min(max(0.0, low), high)
    if norm == "zscore":
        std = float(norm_stats["std"])
        return (zero - float(norm_stats["mean"])) / std if std > 0 else 0.0
    if norm == "minmax":
        return (zero - low) / (high - low) if high > low else 0.0
    raise ValueError(f"unknown normalisation {norm!r}")


def _paper_slices(
    model: RunModel, image: torch.Tensor, truth: np.ndarray, logits: torch.Tensor, fill: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The study's per-slice IoU, per-class IoU and Jaccard loss of one volume.

    Slices are padded top-left to 224 like the original; when no padding is needed the
    unpadded logits are reused.
    """
    pad_image, pad_truth = pad_like_paper(image, truth, image_value=fill)
    if tuple(pad_image.shape) != tuple(image.shape):
        logits = predict_logits(model.model, pad_image, precision=model.precision)
    pred = logits.argmax(1).numpy()
    target = torch.from_numpy(np.ascontiguousarray(pad_truth)).long()
    class_iou = np.stack(
        [paper_class_ious(pred[k], pad_truth[k], logits.shape[1]) for k in range(len(pred))]
    )
    loss = np.array([paper_slice_jaccard_loss(logits[k], target[k]) for k in range(len(pred))])
    # per-class table for reporting: the original's absent_score=NaN, then nanmean
    cls = np.arange(logits.shape[1]).reshape(1, -1, 1)
    flat = (len(pred), 1, -1)
    present = ((pred.reshape(flat) == cls) | (pad_truth.reshape(flat) == cls)).any(-1)
    return class_iou.mean(1), np.where(present, class_iou, np.nan), loss


def predict_volume(
    model: RunModel, cache: SliceCache, vid: int
) -> tuple[torch.Tensor, np.ndarray, torch.Tensor]:
    """``(image, truth, logits)`` of cache volume ``vid`` under the run's model."""
    rows = cache.volume_slices(vid)
    image = torch.from_numpy(np.stack([cache.image(k) for k in rows]).astype(np.float32))
    truth = np.stack([cache.label(k) for k in rows])
    return image, truth, predict_logits(model.model, image, precision=model.precision)


def postprocessing_of(model: RunModel, cache: SliceCache) -> PostProcessing:
    """The run's post-processing: read from ``postprocessing.json``, or decided on the
    run's validation volumes with its best model and saved there."""
    run = RunDir(model.run_dir)
    if run.postprocessing_file.is_file():
        return PostProcessing.load(run.postprocessing_file)
    val = set(run.load_split().val)
    pairs = []
    for vid, vol in enumerate(cache.volumes):
        if vol.labelled and vol.patient in val:
            _, truth, logits = predict_volume(model, cache, vid)
            pairs.append((logits.argmax(1).numpy().astype(np.uint8), truth))
    classes = tuple(range(1, model.num_classes))
    pp = decide(pairs, classes, model.label_names)
    pp.save(run.postprocessing_file)
    return pp


def _volume_row(
    model: RunModel,
    cache: SliceCache,
    vid: int,
    classes: tuple[int, ...],
    pp: PostProcessing | None = None,
) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    vol = cache.volumes[vid]
    image, truth, logits = predict_volume(model, cache, vid)
    pred = logits.argmax(1).numpy().astype(np.uint8)
    jac = float(soft_jaccard_loss_from_logits(logits, torch.from_numpy(truth).long(), classes))
    ious = iou_2d(pred, truth, classes)
    names = dict(model.label_names)
    vm = volume_metrics(pred, truth, vol.spacing, classes, names)
    paper = _paper_slices(model, image, truth, logits, raw_zero_value(vol.norm, model.prepare.norm))
    row = {
        "patient": vol.patient,
        "phase": vol.phase,
        "frame": vol.frame,
        "slices": vol.n_slices,
        "jaccard_loss": jac,
        "paper_iou": float(paper[0].mean()),
        "paper_jaccard_loss": float(paper[2].mean()),
        "units": vm.units,
        **{f"slice_iou_{k}": v for k, v in class_means(ious, classes, names).items()},
        **vm.flat(),
    }
    if vol.spacing is not None:
        row.update(_volume_columns(pred, truth, vol.spacing, model.label_set))
    if pp is not None:
        post = pp.apply(pred)
        row.update(
            {
                f"pp_slice_iou_{k}": v
                for k, v in class_means(iou_2d(post, truth, classes), classes, names).items()
            }
        )
        # a structure left alone keeps its scores: surface distances only where it changed
        scores = vm.flat()
        if pp.labels:
            scores |= volume_metrics(post, truth, vol.spacing, pp.labels, names).flat()
        row.update({f"pp_{k}": v for k, v in scores.items()})
    return row, ious, pred, truth, paper


def _volume_columns(
    pred: np.ndarray, truth: np.ndarray, spacing: tuple[float, ...], labels: LabelSet
) -> dict[str, float]:
    """Per-label volumes in ml of the prediction and the reference, and their difference:
    ``<name>_volume_ml_pred``, ``<name>_volume_ml_ref``, ``<name>_volume_ml_abs_error``
    (every dataset; cardiac label sets get the clinical indices on top)."""
    p, r = label_volumes_ml(pred, spacing, labels), label_volumes_ml(truth, spacing, labels)
    out: dict[str, float] = {}
    for name in labels.foreground_names:
        out[f"{name}_volume_ml_pred"] = p[name]
        out[f"{name}_volume_ml_ref"] = r[name]
        out[f"{name}_volume_ml_abs_error"] = abs(p[name] - r[name])
    return out


def evaluate(
    run_dir: str | Path, split: str = "test", overlays: int = 4, postprocess: bool = True
) -> dict:
    """Evaluate the best model of a fine-tuning run on a patient split.

    Args:
        run_dir: fine-tuning run directory.
        split: ``test`` (default), ``val``, ``train`` or ``official-test`` (the official
            ACDC ``testing/`` patients, never used in training).
        overlays: number of volumes to draw as PNG overlays.
        postprocess: also report the metrics after the run's largest-component
            post-processing (decided on its validation volumes on first use).

    Returns:
        The aggregate metrics (also written to ``metrics.json``); see the module
        docstring for the two metric families it always holds.
    """
    model = load_run_model(run_dir)
    cache = SliceCache.open(model.cache)
    run = RunDir(model.run_dir)
    run_split = run.load_split()
    patients = set(run_split.of(split))
    if split == OFFICIAL_TEST and not patients:
        # split.json written before official-test existed: take them from the cache
        patients = set(official_test_patients(cache)) - set(run_split.train)
    classes = tuple(range(1, model.num_classes))
    pp = postprocessing_of(model, cache) if postprocess else None
    rows, all_ious, labels, paper = [], [], {}, []
    for vid, vol in enumerate(cache.volumes):
        if not vol.labelled or vol.patient not in patients:
            continue
        row, ious, pred, truth, paper_scores = _volume_row(model, cache, vid, classes, pp)
        rows.append(row)
        all_ious.append(ious)
        paper.append(paper_scores)
        labels[(vol.patient, vol.phase)] = (pred, truth, vol)
        if len(rows) <= overlays:
            image = np.stack([cache.image(k) for k in cache.volume_slices(vid)])
            save_overlay(
                run.overlays / f"{vol.patient}_{vol.phase}.png",
                image,
                pred,
                truth,
                f"{vol.patient} {vol.phase}",
                model.num_classes,
            )
    if not rows:
        raise ValueError(f"{run_dir}: no labelled volumes of the {split} split in {cache.path}")
    label_set = model.label_set
    clinical = (
        _clinical(labels, cache.manifest.get("truth"), label_set) if label_set.cardiac else []
    )
    ious = np.concatenate(all_ious)
    metrics = _aggregate(rows, ious, classes, clinical, split, dict(model.label_names))
    metrics.update(_paper_aggregate(paper, model.label_names))
    if pp is not None:
        metrics["postprocessed"] = _postprocessed_aggregate(rows, pp, model.label_names)
    run.write_table(run.per_case_file, rows)
    if clinical:
        run.write_table(run.clinical_file, clinical)
    run.save_metrics(metrics)
    return metrics


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


def _clinical(labels: dict, phantom: dict | None, label_set: LabelSet) -> list[dict]:
    """Clinical indices per patient with ED and ES (cardiac label sets only), against the
    ground truth's and, for the phantom, against its truth from the cache manifest."""
    out = []
    for pid in sorted({p for p, _ in labels}):
        if (pid, "ED") not in labels or (pid, "ES") not in labels:
            continue
        (p_ed, t_ed, vol), (p_es, t_es, _) = labels[(pid, "ED")], labels[(pid, "ES")]
        if vol.spacing is None:
            continue
        pred, ref = (
            clinical_indices(p_ed, p_es, vol.spacing, label_set),
            clinical_indices(t_ed, t_es, vol.spacing, label_set),
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


def _mean(key: str, subset: list[dict]) -> float:
    """Mean of ``key`` over the rows that have it, NaN left out."""
    vals = [r[key] for r in subset if key in r and not math.isnan(r[key])]
    return float(np.mean(vals)) if vals else float("nan")


def _phase_tables(rows: list[dict], prefix: str) -> tuple[list[str], dict[str, dict]]:
    """The structures of the per-case columns ``<prefix><structure>_dice`` and, per
    phase, their mean Dice, HD95 and ASSD (and the phase's mean Dice)."""
    structures = [
        k[len(prefix) : -len("_dice")]
        for k in rows[0]
        if k.endswith("_dice") and k.startswith(prefix) and (prefix or not k.startswith("pp_"))
    ]
    by_phase: dict[str, dict] = defaultdict(dict)
    for phase in sorted({r["phase"] for r in rows}):
        subset = [r for r in rows if r["phase"] == phase]
        for s in structures:
            by_phase[phase][s] = {
                m: _mean(f"{prefix}{s}_{m}", subset) for m in ("dice", "hd95", "assd")
            }
        by_phase[phase]["mean_dice"] = float(
            np.mean([by_phase[phase][s]["dice"] for s in structures])
        )
    return structures, by_phase


def _aggregate(
    rows: list[dict],
    ious: np.ndarray,
    classes: tuple[int, ...],
    clinical: list[dict],
    split: str,
    names: dict[int, str] | None = None,
) -> dict:
    structures, by_phase = _phase_tables(rows, "")
    dice_all = float(np.mean([_mean(f"{s}_dice", rows) for s in structures]))
    metrics = {
        "split": split,
        "volumes": len(rows),
        "slices": int(ious.shape[0]),
        "slice_iou": class_means(ious, classes, names),
        "jaccard_loss": _mean("jaccard_loss", rows),
        "dice_3d": {s: _mean(f"{s}_dice", rows) for s in structures} | {"mean": dice_all},
        "by_phase": by_phase,
        "distance_units": rows[0]["units"],
    }
    errors = [k for k in rows[0] if k.endswith("_volume_ml_abs_error")]
    if errors:
        metrics["volume_ml_mean_abs_error"] = {
            k[: -len("_volume_ml_abs_error")]: _mean(k, rows) for k in errors
        }
    if clinical:
        keys = [k for k in clinical[0] if k.endswith("_abs_error") and not k.startswith("phantom_")]
        metrics["clinical_mean_abs_error"] = {
            k[: -len("_abs_error")]: _mean(k, clinical) for k in keys
        }
        truth_keys = [
            k for k in clinical[0] if k.startswith("phantom_") and k.endswith("_abs_error")
        ]
        if truth_keys:
            metrics["clinical_mean_abs_error_vs_phantom_truth"] = {
                k[len("phantom_") : -len("_abs_error")]: _mean(k, clinical) for k in truth_keys
            }
    return metrics


def _postprocessed_aggregate(rows: list[dict], pp: PostProcessing, names: dict[int, str]) -> dict:
    """The 3D and 2D metrics after post-processing, in the layout of the primary ones."""
    structures, by_phase = _phase_tables(rows, "pp_")
    dice = {s: _mean(f"pp_{s}_dice", rows) for s in structures}
    iou_keys = [k for k in rows[0] if k.startswith("pp_slice_iou_")]
    return {
        "applied_to": [names.get(c, f"class{c}") for c in pp.labels],
        "decided_on": f"{pp.split} ({pp.volumes} volumes)",
        "dice_3d": dice | {"mean": float(np.mean(list(dice.values())))},
        "by_phase": by_phase,
        "slice_iou_volume_mean": {k[len("pp_slice_iou_") :]: _mean(k, rows) for k in iou_keys},
    }


def _paper_aggregate(
    paper: list[tuple[np.ndarray, np.ndarray, np.ndarray]], label_names: dict[int, str]
) -> dict:
    """The study's figures: means (and standard deviations) over all scored slices."""
    iou = np.concatenate([p[0] for p in paper])
    per_class = np.concatenate([p[1] for p in paper])
    loss = np.concatenate([p[2] for p in paper])
    names = [
        label_names.get(c, "background" if c == 0 else f"class{c}")
        for c in range(per_class.shape[1])
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a class never seen: NaN
        class_iou = np.nanmean(per_class, axis=0)
    return {
        "paper_iou": float(iou.mean()),
        "paper_iou_std": float(iou.std()),
        "paper_jaccard_loss": float(loss.mean()),
        "paper_jaccard_loss_std": float(loss.std()),
        "paper_class_iou": {n: float(v) for n, v in zip(names, class_iou, strict=True)},
        "paper_slices": int(iou.shape[0]),
        "paper_protocol": PAPER_PROTOCOL,
        "slice_iou_family": "foreground mean IoU (medssl): classes 1..C-1, absent-from-both "
        "left out, unpadded slices",
    }


__all__ = ["evaluate"]
