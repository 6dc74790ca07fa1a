"""Segmentation metrics: per-slice 2D IoU/Dice, the soft Jaccard loss, a batched
validation accumulator, and ACDC-style 3D Dice / HD95 / ASSD per volume.

Label maps use the ACDC convention 0 background, 1 RV, 2 MYO, 3 LV. Background is
never scored by medssl's own metrics: they take the foreground ``classes`` (default
``(1, 2, 3)``) and refuse class 0 (``slice_iou`` = *foreground mean IoU (medssl)*).

The study's figures are a different family, reproduced exactly by
:func:`paper_slice_iou` and :func:`paper_slice_jaccard_loss` (section "the study's
per-slice metrics" below): all classes *including background*, a class absent from
both prediction and target scoring 1.0, on slices padded top-left to 224 × 224
(:func:`pad_like_paper`). They are not comparable with the foreground numbers.

Empty-structure conventions (the same everywhere in this module):

* **2D, per slice**: a class absent from both prediction and target on a slice scores
  ``NaN`` (not 1), so it is left out of every mean; absent from exactly one scores 0.
* **3D, per volume**: absent from both → Dice 1, HD95 0, ASSD 0 (perfect agreement);
  absent from exactly one → Dice 0, HD95 ``NaN``, ASSD ``NaN`` (a distance to nothing
  is undefined). Note that the helper widely copied in the semi-supervised ACDC
  literature (``calculate_metric_percase``) returns Dice 1 / HD95 0 for a prediction
  on an empty target and 0 / 0 for an empty prediction; those numbers are not
  comparable with these ones on volumes where a structure is missing.

References:
    Kalapos & Gyires-Tóth, "Self-supervised pretraining for 2D medical image
    segmentation", ECCV-W 2022 (per-slice IoU, Jaccard loss; code
    kaland313/SSL-MedSeg, ``supervised_segmentation/inference_acdc.py``).
    Bernard et al., "Deep learning techniques for automatic MRI cardiac multi-structures
    segmentation and diagnosis: is the problem solved?", IEEE TMI 2018 (ACDC metrics).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import numpy as np
import torch
from monai.metrics.utils import get_edge_surface_distance

from medssl.artifacts.labels import ACDC_LABELS
from medssl.data.clinical import check_spacing

#: Defaults where no label set is given: ACDC's (:data:`~medssl.artifacts.labels.ACDC_LABELS`).
FOREGROUND: tuple[int, ...] = ACDC_LABELS.foreground
CLASS_NAMES: Mapping[int, str] = MappingProxyType({v: ACDC_LABELS.name(v) for v in FOREGROUND})


def class_name(label: int, names: Mapping[int, str] | None = None) -> str:
    """Reporting name of a label value: from ``names`` (the dataset's label set) when
    given, else ACDC's (``"RV"``, ``"MYO"``, ``"LV"``); ``"class<k>"`` when unnamed."""
    table = CLASS_NAMES if names is None else names
    return table.get(int(label), f"class{int(label)}")


def _check_classes(classes: Sequence[int]) -> tuple[int, ...]:
    out = tuple(int(c) for c in classes)
    if not out:
        raise ValueError("classes must name at least one foreground class")
    if any(c <= 0 for c in out):
        raise ValueError(f"classes must be foreground labels (> 0), got {out}")
    if len(set(out)) != len(out):
        raise ValueError(f"classes contains duplicates: {out}")
    return out


def _check_pair(pred: np.ndarray, target: np.ndarray, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape")
    if pred.ndim != ndim:
        raise ValueError(f"expected {ndim}D label maps, got shape {pred.shape}")
    for name, arr in (("prediction", pred), ("target", target)):
        if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
            raise ValueError(f"{name} must be an integer label map, got dtype {arr.dtype}")
    return pred, target


# --------------------------------------------------------------------------- 2D, numpy


def _slice_counts(
    pred: np.ndarray, target: np.ndarray, classes: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-slice, per-class ``|P∩G|``, ``|P|``, ``|G|``, each ``(N, K)`` int64."""
    pred, target = _check_pair(pred, target, ndim=3)
    cls = np.asarray(_check_classes(classes)).reshape(1, -1, 1)
    p = pred.reshape(pred.shape[0], 1, -1) == cls
    g = target.reshape(target.shape[0], 1, -1) == cls
    return (p & g).sum(-1), p.sum(-1), g.sum(-1)


def iou_2d(pred: np.ndarray, target: np.ndarray, classes: Sequence[int] = FOREGROUND) -> np.ndarray:
    """Per-slice intersection over union for each foreground class.

    Args:
        pred: ``(N, H, W)`` integer label map.
        target: ``(N, H, W)`` integer label map.
        classes: foreground labels to score (background is never scored).

    Returns:
        ``(N, K)`` float64, ``K = len(classes)``; ``NaN`` where the class is absent from
        both prediction and target on that slice, 0 where it is absent from one only.
    """
    inter, ps, gs = _slice_counts(pred, target, classes)
    union = ps + gs - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, np.nan)


def dice_2d(
    pred: np.ndarray, target: np.ndarray, classes: Sequence[int] = FOREGROUND
) -> np.ndarray:
    """Per-slice Dice ``2|P∩G| / (|P|+|G|)``; shapes and ``NaN`` convention as :func:`iou_2d`."""
    inter, ps, gs = _slice_counts(pred, target, classes)
    denom = ps + gs
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2.0 * inter / denom, np.nan)


def _nanmean(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Mean ignoring NaN; NaN (without a warning) where nothing is left."""
    valid = ~np.isnan(values)
    total = np.where(valid, values, 0.0).sum(axis=axis)
    count = valid.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def class_means(
    scores: np.ndarray,
    classes: Sequence[int] = FOREGROUND,
    names: Mapping[int, str] | None = None,
) -> dict[str, float]:
    """Per-class mean over slices of a ``(N, K)`` score table, ``NaN`` entries left out.

    Returns:
        ``{name: mean}`` for each class plus ``"mean"``, the unweighted mean of the class
        means (the value :func:`mean_score` returns).
    """
    classes = _check_classes(classes)
    if scores.ndim != 2 or scores.shape[1] != len(classes):
        raise ValueError(f"scores must be (N, {len(classes)}), got {scores.shape}")
    per_class = _nanmean(scores, axis=0)
    out = {class_name(c, names): float(v) for c, v in zip(classes, per_class, strict=True)}
    out["mean"] = float(_nanmean(per_class))
    return out


def mean_score(scores: np.ndarray) -> float:
    """Macro mean of a ``(N, K)`` per-slice table: each class's mean over the slices where
    it is scored (non-``NaN``), then the mean over classes that were scored at all.
    ``NaN`` when nothing was scored."""
    if scores.ndim != 2:
        raise ValueError(f"scores must be (N, K), got {scores.shape}")
    return float(_nanmean(_nanmean(scores, axis=0)))


def mean_iou(pred: np.ndarray, target: np.ndarray, classes: Sequence[int] = FOREGROUND) -> float:
    """Mean per-slice foreground IoU, ``mean_score(iou_2d(pred, target, classes))``."""
    return mean_score(iou_2d(pred, target, classes))


def mean_dice(pred: np.ndarray, target: np.ndarray, classes: Sequence[int] = FOREGROUND) -> float:
    """Mean per-slice foreground Dice, ``mean_score(dice_2d(pred, target, classes))``."""
    return mean_score(dice_2d(pred, target, classes))


# --------------------------------------------------------------------------- loss, torch


def soft_jaccard_loss(
    probs: torch.Tensor,
    onehot: torch.Tensor,
    classes: Sequence[int] = FOREGROUND,
    smooth: float = 0.0,
    eps: float = 1e-7,
) -> torch.Tensor:
    """Soft Jaccard (IoU) loss over the batch, averaged over foreground classes.

    For each class ``c`` the sums run over the whole batch and all pixels (not per
    image): ``J_c = (Σ p·g + smooth) / max(Σ p + Σ g − Σ p·g + smooth, eps)`` and the loss
    is ``mean_c (1 − J_c)·[Σ g_c > 0]``: a class absent from the batch's target adds 0
    but still counts in the mean. This is exactly
    ``segmentation_models_pytorch.losses.JaccardLoss(mode="multiclass", classes=classes,
    from_logits=True)`` applied to the logits whose softmax is ``probs``.

    Args:
        probs: ``(B, C, *spatial)`` class probabilities (softmax over ``C``).
        onehot: ``(B, C, *spatial)`` one-hot target (any dtype).
        classes: channels that contribute (background excluded by default).
        smooth: additive smoothing in numerator and denominator.
        eps: lower bound of the denominator.

    Returns:
        Scalar float32 loss in ``[0, 1]``.
    """
    if probs.shape != onehot.shape:
        raise ValueError(f"probs {tuple(probs.shape)} and onehot {tuple(onehot.shape)} differ")
    b, c = probs.shape[:2]
    if max(_check_classes(classes)) >= c:
        raise ValueError(f"classes {tuple(classes)} out of range for {c} channels")
    p = probs.float().reshape(b, c, -1)  # float32 sums: fp16 overflows past 65504 pixels
    g = onehot.float().reshape(b, c, -1)
    inter = (p * g).sum(dim=(0, 2))
    g_sum = g.sum(dim=(0, 2))
    union = p.sum(dim=(0, 2)) + g_sum - inter
    score = (inter + smooth) / (union + smooth).clamp_min(eps)
    loss = (1.0 - score) * (g_sum > 0).to(p.dtype)
    return loss[torch.as_tensor(tuple(classes), device=loss.device)].mean()


def soft_jaccard_loss_from_logits(
    logits: torch.Tensor, target: torch.Tensor, classes: Sequence[int] = FOREGROUND, **kwargs: float
) -> torch.Tensor:
    """:func:`soft_jaccard_loss` from ``(B, C, *spatial)`` logits and a ``(B, *spatial)``
    integer target (softmax over ``C``, one-hot over ``C`` channels)."""
    probs = logits.log_softmax(dim=1).exp()
    onehot = torch.nn.functional.one_hot(target.long(), logits.shape[1]).movedim(-1, 1)
    return soft_jaccard_loss(probs, onehot, classes, **kwargs)


# ------------------------------------------------------------- the study's per-slice metrics

#: Side the original pads test slices to (``A.PadIfNeeded(224, 224, position="top_left")``).
PAPER_PAD_TO = 224


def pad_like_paper(
    image: np.ndarray | torch.Tensor,
    label: np.ndarray | torch.Tensor | None = None,
    min_size: int = PAPER_PAD_TO,
    image_value: float = 0.0,
):
    """Pad slices at the bottom and right to at least ``min_size × min_size``.

    The original evaluation (``A.PadIfNeeded(224, 224, border_mode=BORDER_CONSTANT,
    value=0, position="top_left")``) pads the raw image with 0 before normalising and
    the label with 0 (background), and scores the padded slice. Sides already
    ``≥ min_size`` are left as they are; nothing is cropped.

    Args:
        image: ``(..., H, W)`` array or tensor.
        label: optional ``(..., H, W)`` label map, padded with 0.
        min_size: minimum height and width.
        image_value: fill value of the image (the original's raw 0; pass the
            normalised value of the darkest intensity for an already normalised slice).

    Returns:
        ``(image, label)`` padded (``label`` ``None`` when not given), same types.
    """
    h, w = image.shape[-2:]
    ph, pw = max(0, min_size - h), max(0, min_size - w)

    def pad(x, value):
        if x is None or (ph == 0 and pw == 0):
            return x
        if isinstance(x, torch.Tensor):
            return torch.nn.functional.pad(x, (0, pw, 0, ph), value=value)
        widths = [(0, 0)] * (x.ndim - 2) + [(0, ph), (0, pw)]
        return np.pad(x, widths, mode="constant", constant_values=value)

    if label is not None and tuple(label.shape[-2:]) != (h, w):
        raise ValueError(f"image {tuple(image.shape)} and label {tuple(label.shape)} differ")
    return pad(image, image_value), pad(label, 0)


def paper_slice_iou(
    pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor, num_classes: int = 4
) -> float:
    """The study's per-slice IoU: mean over all ``num_classes`` classes, background included.

    Exactly ``torchmetrics.functional.iou(pred, target, ignore_index=None,
    absent_score=1.0, num_classes=num_classes)`` of torchmetrics < 0.10, as the original
    ``inference_acdc.py`` calls it: per class ``|P∩G| / |P∪G|``, 1.0 for a class absent
    from both, 0 for a class in only one of them, then the plain mean over the classes.
    (torchmetrics ≥ 1.0 ``multiclass_jaccard_index(average="macro")`` leaves classes
    absent from both out of the mean, so it differs; ``average="none",
    zero_division=1.0`` then ``.mean()`` equals this function.)

    Args:
        pred: ``(H, W)`` integer label map.
        target: ``(H, W)`` integer label map.
        num_classes: number of classes, background (0) included.

    Returns:
        IoU in ``[0, 1]``.
    """
    return float(paper_class_ious(pred, target, num_classes).mean())


def paper_class_ious(
    pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor, num_classes: int = 4
) -> np.ndarray:
    """``(num_classes,)`` per-class IoU of one slice with :func:`paper_slice_iou`'s rules."""
    pred = pred.cpu().numpy() if isinstance(pred, torch.Tensor) else np.asarray(pred)
    target = target.cpu().numpy() if isinstance(target, torch.Tensor) else np.asarray(target)
    pred, target = _check_pair(pred, target, ndim=2)
    cls = np.arange(num_classes).reshape(-1, 1)
    p, g = pred.reshape(1, -1) == cls, target.reshape(1, -1) == cls
    inter = (p & g).sum(-1)
    union = p.sum(-1) + g.sum(-1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def paper_slice_jaccard_loss(logits: torch.Tensor, target: torch.Tensor | np.ndarray) -> float:
    """The study's per-slice loss: smp's soft Jaccard over all classes, background included.

    ``segmentation_models_pytorch.losses.JaccardLoss(mode="multiclass", classes=None,
    from_logits=True)`` (log_loss False, smooth 0, eps 1e-7) of one slice: softmax of
    the logits, per class ``1 − Σpg / max(Σp + Σg − Σpg, eps)``, multiplied by 0 for a
    class absent from the target, mean over all ``C`` classes.

    Args:
        logits: ``(C, H, W)`` float logits.
        target: ``(H, W)`` integer label map.
    """
    import segmentation_models_pytorch as smp

    if not isinstance(target, torch.Tensor):
        target = torch.from_numpy(np.asarray(target))
    if logits.ndim != 3 or tuple(logits.shape[-2:]) != tuple(target.shape):
        raise ValueError(
            f"logits must be (C, H, W) and target (H, W), got {tuple(logits.shape)}"
            f" and {tuple(target.shape)}"
        )
    loss = smp.losses.JaccardLoss(mode="multiclass", classes=None, from_logits=True)
    return float(loss(logits[None].float(), target[None].long().to(logits.device)))


# --------------------------------------------------------------------------- 3D, per volume


@dataclass(frozen=True)
class VolumeMetrics:
    """3D scores of one volume.

    Attributes:
        scores: ``{structure: {"dice", "hd95", "assd"}}``, e.g. ``scores["LV"]["hd95"]``.
        units: ``"mm"`` when a spacing was given, ``"px"`` (voxel steps) otherwise.
    """

    scores: dict[str, dict[str, float]]
    units: Literal["mm", "px"]

    def __getitem__(self, structure: str) -> dict[str, float]:
        return self.scores[structure]

    def __iter__(self) -> Iterator[str]:
        return iter(self.scores)

    def flat(self) -> dict[str, float]:
        """``{"<structure>_<metric>": value}``, e.g. ``{"LV_dice": 0.93, ...}``."""
        return {f"{s}_{m}": v for s, d in self.scores.items() for m, v in d.items()}


def surface_distances(
    pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float] | None = None
) -> tuple[float, float]:
    """Symmetric HD95 and ASSD between two non-empty binary masks, via MONAI.

    Distances run between surface voxels (mask minus its erosion) with the Euclidean
    distance scaled by ``spacing`` along each axis. HD95 is
    ``max(P95(d(P→G)), P95(d(G→P)))`` (MONAI's definition; medpy's ``hd95`` takes the
    95th percentile of both directions pooled, which can differ slightly). ASSD is the
    mean of both directions' distances pooled.

    Args:
        pred: ``(S, H, W)`` (or any-D) boolean mask, not empty.
        gt: same shape, not empty.
        spacing: voxel size per axis in the array's order, or ``None`` for unit steps.

    Returns:
        ``(hd95, assd)`` in the units of ``spacing`` (voxel steps when ``None``).
    """
    pred, gt = np.asarray(pred, dtype=bool), np.asarray(gt, dtype=bool)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and target {gt.shape} differ in shape")
    if not pred.any() or not gt.any():
        raise ValueError("surface distances need two non-empty masks")
    sp = check_spacing(spacing, pred.ndim)
    p, g = torch.from_numpy(pred).float(), torch.from_numpy(gt).float()
    with warnings.catch_warnings():  # MONAI 1.5-1.6 warns about its own internal call
        warnings.filterwarnings("ignore", message=".*always_return_as_numpy.*")
        # one edge extraction and distance transform for both metrics: what MONAI's
        # compute_hausdorff_distance(percentile=95) and compute_average_surface_distance
        # (symmetric=True) each compute, then reduce differently
        _, (d_pg, d_gp), _ = get_edge_surface_distance(
            p, g, distance_metric="euclidean", spacing=sp, symmetric=True
        )
    hd95 = torch.max(torch.stack([torch.quantile(d, 0.95) for d in (d_pg, d_gp)]))
    assd = torch.cat([d_pg, d_gp]).mean()
    return float(hd95.item()), float(assd.item())


def volume_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    spacing: Sequence[float] | None,
    classes: Sequence[int] = FOREGROUND,
    names: Mapping[int, str] | None = None,
) -> VolumeMetrics:
    """ACDC-standard Dice, HD95 and ASSD per structure of one 3D volume.

    Args:
        pred: ``(S, H, W)`` integer label map (``(Z, Y, X)``, see :mod:`medssl.data.case`).
        gt: ``(S, H, W)`` integer label map.
        spacing: ``(slice, row, col)`` voxel size in mm, or ``None`` (distances in voxel
            steps, ``units="px"``). With ACDC's anisotropy (slice ≫ in-plane) passing the
            real spacing matters.
        classes: foreground labels to score.

    Returns:
        :class:`VolumeMetrics`; empty structures follow the module's 3D convention
        (both empty → 1, 0, 0; one empty → 0, NaN, NaN).
    """
    pred, gt = _check_pair(pred, gt, ndim=3)
    sp = check_spacing(spacing, 3)
    scores: dict[str, dict[str, float]] = {}
    for c in _check_classes(classes):
        p, g = pred == c, gt == c
        n_p, n_g = int(p.sum()), int(g.sum())
        if n_p == 0 and n_g == 0:
            scores[class_name(c, names)] = {"dice": 1.0, "hd95": 0.0, "assd": 0.0}
        elif n_p == 0 or n_g == 0:
            scores[class_name(c, names)] = {"dice": 0.0, "hd95": float("nan"), "assd": float("nan")}
        else:
            hd95, assd = surface_distances(p, g, sp)
            dice = 2.0 * int((p & g).sum()) / (n_p + n_g)
            scores[class_name(c, names)] = {"dice": dice, "hd95": hd95, "assd": assd}
    return VolumeMetrics(scores=scores, units="px" if sp is None else "mm")
