"""The study's per-slice metrics (Kalapos & Gyires-Tóth 2022) on hand-computed tiny slices.

The original ``inference_acdc.py`` scores each test slice with
``torchmetrics.functional.iou(preds, targets, ignore_index=None, absent_score=1.0,
num_classes=4)`` (mean over 4 classes including background, absent from both → 1.0)
and ``smp.losses.JaccardLoss(mode="multiclass", classes=None, from_logits=True)``, on
slices padded top-left to 224 × 224.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import multiclass_jaccard_index

from medssl.evaluation.metrics import (
    PAPER_PAD_TO,
    pad_like_paper,
    paper_class_ious,
    paper_slice_iou,
    paper_slice_jaccard_loss,
)

# 2 × 3 slice. Per class (0 bg, 1 RV, 2 MYO, 3 LV):
#   bg : pred {(0,0),(0,1),(1,2)}, target {(0,0),(0,1),(0,2)} -> 2 / 4 = 0.5
#   RV : in the prediction only -> 0
#   MYO: absent from both -> 1.0
#   LV : pred {(1,0),(1,1)}, target {(1,0),(1,1),(1,2)} -> 2 / 3
PRED = np.array([[0, 0, 1], [3, 3, 0]])
TARGET = np.array([[0, 0, 0], [3, 3, 3]])
HAND_CLASS_IOU = [0.5, 0.0, 1.0, 2 / 3]


def test_per_class_iou_by_hand() -> None:
    np.testing.assert_allclose(paper_class_ious(PRED, TARGET), HAND_CLASS_IOU)


def test_slice_iou_is_mean_over_four_classes_with_background() -> None:
    assert paper_slice_iou(PRED, TARGET) == pytest.approx(sum(HAND_CLASS_IOU) / 4)
    # the foreground-only mean (medssl) would be different: (0 + 2/3) / 2 over scored classes
    assert paper_slice_iou(PRED, TARGET) != pytest.approx((0 + 2 / 3) / 2)


def test_absent_from_both_scores_one() -> None:
    # only background and LV anywhere: RV and MYO absent from both score 1
    pred = np.array([[0, 3, 3], [0, 0, 0]])
    target = np.array([[0, 3, 3], [0, 0, 3]])
    # bg: pred 4 pixels, target 3, all 3 shared -> 3/4; RV 1, MYO 1; LV 2/3
    np.testing.assert_allclose(paper_class_ious(pred, target), [0.75, 1.0, 1.0, 2 / 3])
    assert paper_slice_iou(pred, target) == pytest.approx((0.75 + 1 + 1 + 2 / 3) / 4)


def test_present_only_in_prediction_scores_zero() -> None:
    pred = np.array([[2, 0, 0], [0, 0, 0]])
    target = np.zeros((2, 3), dtype=np.int64)
    # bg 5/6, RV 1, MYO 0 (prediction only), LV 1
    np.testing.assert_allclose(paper_class_ious(pred, target), [5 / 6, 1.0, 0.0, 1.0])
    # present only in the target: 0 as well
    np.testing.assert_allclose(paper_class_ious(target, pred), [5 / 6, 1.0, 0.0, 1.0])


def test_background_counts() -> None:
    # foreground perfect, background wrong on one pixel: IoU < 1 only through background
    pred = np.array([[1, 1, 0], [0, 0, 0]])
    target = np.array([[1, 1, 0], [0, 0, 2]])
    ious = paper_class_ious(pred, target)
    assert ious[0] == pytest.approx(3 / 4) and ious[1] == 1.0 and ious[2] == 0.0
    assert paper_slice_iou(pred, target) == pytest.approx((0.75 + 1 + 0 + 1) / 4)


def test_perfect_prediction() -> None:
    assert paper_slice_iou(TARGET, TARGET) == 1.0
    logits = 50.0 * torch.nn.functional.one_hot(torch.from_numpy(TARGET), 4).permute(2, 0, 1)
    assert paper_slice_jaccard_loss(logits.float(), TARGET) == pytest.approx(0.0, abs=1e-6)


def test_torch_inputs_and_torchmetrics_agree() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        pred = rng.integers(0, 4, (5, 7))
        target = rng.integers(0, 3, (5, 7))  # LV never in the target
        pred[pred == 2] = 0 if rng.random() < 0.5 else 2  # sometimes MYO absent from both
        ours = paper_slice_iou(torch.from_numpy(pred), torch.from_numpy(target))
        tm = multiclass_jaccard_index(
            torch.from_numpy(pred), torch.from_numpy(target), 4, average="none", zero_division=1.0
        )
        assert ours == pytest.approx(float(tm.mean()))


def test_torchmetrics_macro_drops_absent_classes() -> None:
    """Why ``average="macro"`` of torchmetrics 1.x is not the study's IoU."""
    macro = multiclass_jaccard_index(
        torch.from_numpy(PRED), torch.from_numpy(TARGET), 4, average="macro", zero_division=1.0
    )
    assert float(macro) == pytest.approx((0.5 + 0 + 2 / 3) / 3)  # MYO left out
    assert paper_slice_iou(PRED, TARGET) == pytest.approx((0.5 + 0 + 1 + 2 / 3) / 4)


def test_jaccard_loss_by_hand_uniform_logits() -> None:
    """Zero logits: p = 1/4 everywhere on a 2 × 3 slice whose target lacks MYO.

    bg : Σpg = 2/4, Σp = 6/4, Σg = 2 -> J = 0.5 / 3    -> 1 − J = 5/6
    RV : Σpg = 1/4, Σp = 6/4, Σg = 1 -> J = 0.25 / 2.25 -> 8/9
    MYO: absent from the target -> contributes 0, still counted in the mean
    LV : Σpg = 3/4, Σp = 6/4, Σg = 3 -> J = 0.75 / 3.75 -> 4/5
    """
    target = np.array([[0, 0, 1], [3, 3, 3]])
    loss = paper_slice_jaccard_loss(torch.zeros(4, 2, 3), target)
    assert loss == pytest.approx((5 / 6 + 8 / 9 + 0 + 4 / 5) / 4, rel=1e-6)


def _soft_jaccard_numpy(logits: np.ndarray, target: np.ndarray) -> float:
    e = np.exp(logits - logits.max(0, keepdims=True))
    p = e / e.sum(0, keepdims=True)
    losses = []
    for c in range(logits.shape[0]):
        g = (target == c).astype(np.float64)
        inter = (p[c] * g).sum()
        union = p[c].sum() + g.sum() - inter
        losses.append((1 - inter / max(union, 1e-7)) if g.sum() > 0 else 0.0)
    return float(np.mean(losses))  # divided by all C classes


def test_jaccard_loss_matches_hand_formula_with_absent_class() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, (4, 2, 3)).astype(np.float32)
    target = np.array([[0, 1, 1], [0, 3, 0]])  # MYO absent
    expected = _soft_jaccard_numpy(logits.astype(np.float64), target)
    assert paper_slice_jaccard_loss(torch.from_numpy(logits), target) == pytest.approx(
        expected, rel=1e-5
    )
    # the absent class adds 0 but divides by 4: the mean over the 3 present ones is larger
    present = expected * 4 / 3
    assert present > expected


def test_jaccard_loss_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError):
        paper_slice_jaccard_loss(torch.zeros(1, 4, 2, 3), TARGET)


def test_pad_like_paper_top_left() -> None:
    image = np.arange(6, dtype=np.float32).reshape(2, 3) + 1
    img, lab = pad_like_paper(image, TARGET)
    assert img.shape == lab.shape == (PAPER_PAD_TO, PAPER_PAD_TO)
    np.testing.assert_array_equal(img[:2, :3], image)
    np.testing.assert_array_equal(lab[:2, :3], TARGET)
    assert img[2:].sum() == 0 and img[:, 3:].sum() == 0 and lab.sum() == TARGET.sum()
    # a side already >= 224 is kept, nothing is cropped; batch dims and tensors work
    big = torch.ones(3, 230, 10)
    out, none = pad_like_paper(big, image_value=-2.0)
    assert none is None and tuple(out.shape) == (3, 230, 224)
    assert float(out[:, :, 10:].max()) == -2.0 and float(out[:, :, :10].min()) == 1.0
    same, _ = pad_like_paper(np.ones((224, 300)))
    assert same.shape == (224, 300)


def test_padding_adds_background_to_the_score() -> None:
    _, pred = pad_like_paper(np.zeros((2, 3)), PRED)
    _, target = pad_like_paper(np.zeros((2, 3)), TARGET)
    n = PAPER_PAD_TO * PAPER_PAD_TO
    bg = (n - 6 + 2) / (n - 6 + 4)  # padded pixels are background in both
    assert paper_slice_iou(pred, target) == pytest.approx((bg + 0 + 1 + 2 / 3) / 4)


# ------------------------------------------------------------------ evaluate writes both


def test_evaluate_writes_both_metric_families(tiny_finetuned: Path) -> None:
    from medssl.data.cache_read import SliceCache
    from medssl.data.splits import Split
    from medssl.evaluation.evaluate import evaluate, raw_zero_value
    from medssl.evaluation.inference import predict_logits
    from medssl.evaluation.run_model import load_run_model

    metrics = evaluate(tiny_finetuned, overlays=0)
    saved = json.loads((tiny_finetuned / "metrics.json").read_text())
    # the study's family
    for key in ("paper_iou", "paper_iou_std", "paper_jaccard_loss", "paper_jaccard_loss_std"):
        assert math.isfinite(saved[key]) and saved[key] == metrics[key]
    assert 0 <= saved["paper_iou"] <= 1 and 0 <= saved["paper_jaccard_loss"] <= 1
    assert set(saved["paper_class_iou"]) == {"background", "RV", "MYO", "LV"}
    assert saved["paper_slices"] == saved["slices"]
    assert "224" in saved["paper_protocol"] and "background" in saved["paper_protocol"]
    # medssl's foreground family and the ACDC 3D family, keys unchanged
    assert set(saved["slice_iou"]) == {"RV", "MYO", "LV", "mean"}
    assert 0 <= saved["jaccard_loss"] <= 1
    assert set(saved["dice_3d"]) == {"RV", "MYO", "LV", "mean"}
    assert set(saved["by_phase"]) == {"ED", "ES"}
    assert {"dice", "hd95", "assd"} <= set(saved["by_phase"]["ED"]["LV"])
    assert saved["distance_units"] == "mm"
    header = (tiny_finetuned / "per_case.csv").read_text().splitlines()[0].split(",")
    assert {"paper_iou", "paper_jaccard_loss", "jaccard_loss", "LV_dice"} <= set(header)

    # recompute the study's numbers independently: pad every slice, predict, score
    model = load_run_model(tiny_finetuned)
    cache = SliceCache.open(model.cache)
    test = set(Split.load(tiny_finetuned / "split.json").test)
    ious, losses = [], []
    for vid, vol in enumerate(cache.volumes):
        if not vol.labelled or vol.patient not in test:
            continue
        rows = cache.volume_slices(vid)
        fill = raw_zero_value(vol.norm, model.prepare.norm)
        for k in rows:
            img, lab = pad_like_paper(
                cache.image(k).astype(np.float32), cache.label(k), image_value=fill
            )
            logits = predict_logits(model.model, torch.from_numpy(img)[None])[0]
            ious.append(paper_slice_iou(logits.argmax(0), lab))
            losses.append(paper_slice_jaccard_loss(logits, lab))
    assert saved["paper_iou"] == pytest.approx(np.mean(ious), abs=1e-6)
    assert saved["paper_jaccard_loss"] == pytest.approx(np.mean(losses), abs=1e-5)


def test_raw_zero_value() -> None:
    from medssl.evaluation.evaluate import raw_zero_value

    stats = {"low": 10.0, "high": 110.0, "mean": 60.0, "std": 25.0}
    assert raw_zero_value(stats, "zscore") == pytest.approx((10 - 60) / 25)  # 0 clips to low
    assert raw_zero_value(stats, "minmax") == 0.0
    stats = {"low": -50.0, "high": 50.0, "mean": 0.0, "std": 10.0}
    assert raw_zero_value(stats, "zscore") == 0.0
    assert raw_zero_value(stats, "minmax") == pytest.approx(0.5)
