"""2D/3D segmentation metrics and the soft Jaccard loss on hand-built masks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from medssl.evaluation.counts import SegmentationCounts
from medssl.evaluation.metrics import (
    class_means,
    dice_2d,
    iou_2d,
    mean_dice,
    mean_iou,
    soft_jaccard_loss,
    soft_jaccard_loss_from_logits,
    surface_distances,
    volume_metrics,
)

# ------------------------------------------------------------------ 2D IoU / Dice


def _two_boxes() -> tuple[np.ndarray, np.ndarray]:
    """LV boxes of 16 px each overlapping on 4 px: IoU 4/28, Dice 8/32."""
    pred = np.zeros((1, 8, 8), dtype=np.uint8)
    target = np.zeros_like(pred)
    pred[0, 0:4, 0:4] = 3
    target[0, 2:6, 2:6] = 3
    return pred, target


def test_overlapping_boxes_hand_values() -> None:
    pred, target = _two_boxes()
    iou, dice = iou_2d(pred, target), dice_2d(pred, target)
    assert iou.shape == dice.shape == (1, 3)
    assert iou[0, 2] == pytest.approx(4 / 28)
    assert dice[0, 2] == pytest.approx(8 / 32)
    assert np.isnan(iou[0, :2]).all() and np.isnan(dice[0, :2]).all()  # RV, MYO absent
    assert mean_iou(pred, target) == pytest.approx(4 / 28)
    assert mean_dice(pred, target) == pytest.approx(0.25)


def test_empty_in_both_is_nan_and_excluded_from_mean() -> None:
    empty = np.zeros((2, 5, 5), dtype=np.int64)
    assert np.isnan(iou_2d(empty, empty)).all()
    assert math.isnan(mean_iou(empty, empty))
    pred = empty.copy()
    pred[0, 1:3, 1:3] = 1
    # slice 0 perfect on RV, slice 1 empty in both: the mean is 1, not 0.5
    assert iou_2d(pred, pred)[:, 0].tolist()[0] == 1.0
    assert mean_iou(pred, pred) == 1.0
    assert class_means(iou_2d(pred, pred))["RV"] == 1.0


def test_empty_in_one_scores_zero() -> None:
    pred = np.zeros((1, 5, 5), dtype=np.int64)
    target = pred.copy()
    pred[0, 1:3, 1:3] = 1  # RV predicted, absent in target
    target[0, 1:3, 1:3] = 2  # MYO in target, not predicted
    iou = iou_2d(pred, target)
    assert iou[0, 0] == 0.0 and iou[0, 1] == 0.0 and np.isnan(iou[0, 2])
    assert dice_2d(pred, target)[0, :2].tolist() == [0.0, 0.0]
    assert mean_iou(pred, target) == 0.0


def test_background_is_excluded() -> None:
    target = np.zeros((1, 32, 32), dtype=np.int64)
    target[0, 10:14, 10:14] = 3  # 16 of 1024 pixels
    pred = np.zeros_like(target)  # perfect on background (98% accuracy), misses the LV
    assert mean_iou(pred, target) == 0.0
    assert mean_dice(pred, target) == 0.0
    with pytest.raises(ValueError, match="foreground"):
        iou_2d(pred, target, classes=(0, 1))


def test_class_means_macro_average() -> None:
    scores = np.array([[1.0, np.nan, 0.5], [0.0, np.nan, np.nan]])
    means = class_means(scores)
    assert means["RV"] == 0.5 and math.isnan(means["MYO"]) and means["LV"] == 0.5
    assert means["mean"] == 0.5


def test_2d_input_checks() -> None:
    a = np.zeros((1, 4, 4), dtype=np.int64)
    with pytest.raises(ValueError, match="shape"):
        iou_2d(a, np.zeros((1, 4, 5), dtype=np.int64))
    with pytest.raises(ValueError, match="integer"):
        iou_2d(a.astype(np.float32), a)


# ------------------------------------------------------------------ SegmentationCounts


def test_counts_match_numpy_and_batching() -> None:
    gen = torch.Generator().manual_seed(0)
    pred = torch.randint(0, 4, (6, 9, 9), generator=gen)
    target = torch.randint(0, 4, (6, 9, 9), generator=gen)
    target[:, :, :] = torch.where(target == 1, 0, target)  # RV never in target
    pred[3:] = torch.where(pred[3:] == 1, 0, pred[3:])  # ... and only in pred slices 0-2
    whole, split = SegmentationCounts(), SegmentationCounts()
    whole.update(pred, target)
    split.update(pred[:4], target[:4])
    split.update(pred[4:], target[4:])
    a, b = whole.compute(), split.compute()
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == pytest.approx(b[key], nan_ok=True)
    p, t = pred.numpy(), target.numpy()
    assert a["slice_iou/mean"] == pytest.approx(mean_iou(p, t))
    assert a["slice_dice/mean"] == pytest.approx(mean_dice(p, t))
    assert a["slice_iou/RV"] == 0.0
    inter = ((p == 3) & (t == 3)).sum()
    assert a["iou/LV"] == pytest.approx(inter / ((p == 3) | (t == 3)).sum())
    assert a["dice/LV"] == pytest.approx(2 * inter / ((p == 3).sum() + (t == 3).sum()))


def test_counts_unseen_class_is_nan_and_reset() -> None:
    counts = SegmentationCounts()
    with pytest.raises(RuntimeError):
        counts.compute()
    pred = torch.zeros((1, 4, 4), dtype=torch.long)
    pred[0, :2] = 3
    counts.update(pred, pred)
    out = counts.compute()
    assert math.isnan(out["iou/RV"]) and out["iou/LV"] == 1.0 and out["iou/mean"] == 1.0
    counts.reset()
    counts.update(pred, torch.zeros_like(pred))
    assert counts.compute()["iou/mean"] == 0.0


# ------------------------------------------------------------------ soft Jaccard loss


def _onehot(target: torch.Tensor, c: int = 4) -> torch.Tensor:
    return torch.nn.functional.one_hot(target, c).movedim(-1, 1).float()


def test_jaccard_perfect_prediction_is_zero() -> None:
    target = torch.randint(0, 4, (2, 8, 8), generator=torch.Generator().manual_seed(1))
    onehot = _onehot(target)
    assert soft_jaccard_loss(onehot, onehot).item() == pytest.approx(0.0, abs=1e-6)
    assert soft_jaccard_loss_from_logits(onehot * 50, target).item() == pytest.approx(0.0, abs=1e-6)


def test_jaccard_uniform_prediction_known_value() -> None:
    # each class on a quarter of the pixels, p = 1/4 everywhere:
    # I = n/4, union = P/4 + n - n/4 with n = P/4  ->  J = 1/7, loss 6/7
    target = torch.arange(4).repeat_interleave(4).reshape(1, 4, 4)
    probs = torch.full((1, 4, 4, 4), 0.25)
    assert soft_jaccard_loss(probs, _onehot(target)).item() == pytest.approx(6 / 7)


def test_jaccard_class_absent_from_target_counts_zero() -> None:
    # RV absent from the target: it adds 0 to the sum but counts in the mean over 3 classes
    target = torch.tensor([[[0, 2], [3, 3]]])
    probs = torch.full((1, 4, 2, 2), 0.25)
    j_myo = 0.25 / (1.0 + 1 - 0.25)  # I = 1/4, Σp = 1, Σg = 1
    j_lv = 0.5 / (1.0 + 2 - 0.5)  # I = 2/4, Σp = 1, Σg = 2
    expected = ((1 - j_myo) + (1 - j_lv)) / 3
    assert soft_jaccard_loss(probs, _onehot(target)).item() == pytest.approx(expected)


@pytest.mark.parametrize("drop_rv", [False, True])
def test_jaccard_matches_smp(drop_rv: bool) -> None:
    losses = pytest.importorskip("segmentation_models_pytorch.losses")
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(3, 4, 16, 16, generator=gen) * 3
    target = torch.randint(0, 4, (3, 16, 16), generator=gen)
    if drop_rv:
        target[target == 1] = 0
    ref = losses.JaccardLoss(mode="multiclass", classes=[1, 2, 3], from_logits=True)
    ours = soft_jaccard_loss_from_logits(logits, target, classes=(1, 2, 3))
    assert ours.item() == pytest.approx(ref(logits, target).item(), abs=1e-5)
    probs = logits.softmax(dim=1)
    assert soft_jaccard_loss(probs, _onehot(target)).item() == pytest.approx(ours.item(), abs=1e-6)


def test_jaccard_has_gradient() -> None:
    logits = torch.randn(2, 4, 8, 8, requires_grad=True)
    target = torch.randint(0, 4, (2, 8, 8))
    soft_jaccard_loss_from_logits(logits, target).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


# ------------------------------------------------------------------ 3D Dice / HD95 / ASSD

ANISO = (10.0, 1.25, 1.5)  # slice, row, col in mm


def _plate(axis: int, index: int, shape: tuple[int, int, int] = (9, 16, 16)) -> np.ndarray:
    """A one-voxel-thick plate perpendicular to ``axis`` (every voxel is on the surface)."""
    vol = np.zeros(shape, dtype=np.uint8)
    region = [slice(2, s - 2) for s in shape]
    region[axis] = slice(index, index + 1)
    vol[tuple(region)] = 3
    return vol


@pytest.mark.parametrize(
    ("axis", "shift", "expected_mm"),
    [(0, 2, 20.0), (1, 3, 3.75), (2, 3, 4.5)],
)
def test_shift_scales_with_spacing_of_its_axis(axis: int, shift: int, expected_mm: float) -> None:
    pred, gt = _plate(axis, 3), _plate(axis, 3 + shift)
    m = volume_metrics(pred, gt, ANISO)
    assert m.units == "mm"
    assert m["LV"]["dice"] == 0.0
    assert m["LV"]["hd95"] == pytest.approx(expected_mm)
    assert m["LV"]["assd"] == pytest.approx(expected_mm)
    px = volume_metrics(pred, gt, None)
    assert px.units == "px"
    assert px["LV"]["hd95"] == pytest.approx(shift) and px["LV"]["assd"] == pytest.approx(shift)


def _brute_force(pred: np.ndarray, gt: np.ndarray, spacing: tuple[float, ...]) -> tuple:
    surf = [np.argwhere(m & ~ndimage.binary_erosion(m)) * np.asarray(spacing) for m in (pred, gt)]
    d = np.linalg.norm(surf[0][:, None] - surf[1][None], axis=-1)
    ab, ba = d.min(1), d.min(0)
    return max(np.percentile(ab, 95), np.percentile(ba, 95)), np.concatenate([ab, ba]).mean()


def test_distances_match_brute_force_on_boxes() -> None:
    pred = np.zeros((8, 14, 14), dtype=bool)
    gt = np.zeros_like(pred)
    pred[1:5, 2:9, 3:10] = True
    gt[2:7, 4:12, 2:8] = True
    hd95, assd = surface_distances(pred, gt, ANISO)
    ref_hd95, ref_assd = _brute_force(pred, gt, ANISO)
    assert hd95 == pytest.approx(ref_hd95, rel=1e-5)
    assert assd == pytest.approx(ref_assd, rel=1e-5)
    assert hd95 != pytest.approx(surface_distances(pred, gt, None)[0])


def test_volume_dice_hand_value() -> None:
    pred = np.zeros((4, 6, 6), dtype=np.int64)
    gt = pred.copy()
    pred[0:2, 0:3, 0:3] = 2  # 18 voxels
    gt[1:3, 0:3, 0:3] = 2  # 18 voxels, 9 shared
    assert volume_metrics(pred, gt, ANISO)["MYO"]["dice"] == pytest.approx(0.5)


def test_volume_empty_conventions() -> None:
    empty = np.zeros((3, 6, 6), dtype=np.int64)
    lv = empty.copy()
    lv[1, 2:4, 2:4] = 3
    both = volume_metrics(empty, empty, ANISO)
    assert both["RV"] == {"dice": 1.0, "hd95": 0.0, "assd": 0.0}
    for pred, gt in ((lv, empty), (empty, lv)):
        one = volume_metrics(pred, gt, ANISO)["LV"]
        assert one["dice"] == 0.0 and math.isnan(one["hd95"]) and math.isnan(one["assd"])
    flat = volume_metrics(lv, lv, ANISO).flat()
    assert set(flat) == {f"{s}_{m}" for s in ("RV", "MYO", "LV") for m in ("dice", "hd95", "assd")}
    assert flat["LV_dice"] == 1.0 and flat["LV_hd95"] == 0.0


def test_volume_input_checks() -> None:
    vol = np.zeros((3, 6, 6), dtype=np.int64)
    with pytest.raises(ValueError, match="spacing"):
        volume_metrics(vol, vol, (1.0, 1.0))
    with pytest.raises(ValueError, match="spacing"):
        volume_metrics(vol, vol, (0.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="3D"):
        volume_metrics(vol[0], vol[0], None)
    with pytest.raises(ValueError, match="non-empty"):
        surface_distances(vol.astype(bool), vol.astype(bool))


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_surface_distances_equal_monais_two_metric_functions() -> None:
    """One shared edge/distance computation gives exactly what MONAI's
    compute_hausdorff_distance(percentile=95) and compute_average_surface_distance
    (symmetric) give separately, with and without spacing."""
    import torch
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance

    rng = np.random.default_rng(0)
    for trial in range(8):
        shape = tuple(
            int(v) for v in (rng.integers(3, 8), rng.integers(16, 40), rng.integers(16, 40))
        )
        a = rng.random(shape) < rng.uniform(0.05, 0.5)
        b = rng.random(shape) < rng.uniform(0.05, 0.5)
        sp = None if trial % 3 == 0 else tuple(float(v) for v in rng.uniform(0.5, 10, 3))
        p, g = torch.from_numpy(a[None, None]), torch.from_numpy(b[None, None])
        hd = compute_hausdorff_distance(p, g, include_background=True, percentile=95, spacing=sp)
        asd = compute_average_surface_distance(
            p, g, include_background=True, symmetric=True, spacing=sp
        )
        assert surface_distances(a, b, sp) == (hd.item(), asd.item())
