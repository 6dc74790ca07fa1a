"""Largest-component post-processing: the operation, the validation decision, and its use
by evaluate and predict."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
from scipy import ndimage

from medssl.evaluation.evaluate import evaluate
from medssl.evaluation.postprocess import PostProcessing, decide, keep_largest, largest_component
from medssl.evaluation.predict import predict
from tests import builders


def test_largest_component_uses_full_3d_connectivity() -> None:
    m = np.zeros((3, 6, 6), bool)
    m[0, 0:2, 0:2] = True  # 4 voxels
    m[1, 2, 2] = True  # touches the first block only by a corner: same component
    m[2, 5, 5] = m[2, 5, 4] = True  # 2 voxels, separate
    out = largest_component(m)
    assert out.sum() == 5 and not out[2].any()
    assert largest_component(np.zeros((2, 3, 3), bool)).sum() == 0


def test_keep_largest_sends_islands_to_background_and_leaves_other_labels() -> None:
    pred = np.zeros((2, 8, 8), np.uint8)
    pred[:, 1:4, 1:4] = 1
    pred[0, 7, 7] = 1  # island of label 1
    pred[:, 5:7, 0:2] = 2
    pred[1, 0, 7] = 2  # island of label 2, not post-processed
    out = keep_largest(pred, (1,))
    assert out[0, 7, 7] == 0 and out[1, 0, 7] == 2
    assert (out == 1).sum() == (pred == 1).sum() - 1 and (out == 2).sum() == (pred == 2).sum()


def test_decide_applies_only_where_validation_dice_rises() -> None:
    truth = np.zeros((2, 10, 10), np.uint8)
    truth[:, 2:6, 2:6] = 1
    truth[:, 7:9, 1:3] = 2
    truth[:, 7:9, 7:9] = 2  # the truth of label 2 has two components
    pred = truth.copy()
    pred[0, 0, 9] = 1  # a stray island of label 1
    pp = decide([(pred, truth)], (1, 2), {1: "A", 2: "B"})
    assert pp.labels == (1,)
    assert pp.per_class["A"]["with"] > pp.per_class["A"]["without"]
    assert pp.per_class["A"]["with"] == 1.0
    # removing the second true component of label 2 would lower its Dice: left alone
    assert not pp.per_class["B"]["applied"]
    assert pp.per_class["B"]["with"] < pp.per_class["B"]["without"] == 1.0
    assert PostProcessing.from_dict(json.loads(json.dumps(pp.to_dict()))) == pp
    assert decide([], (1,)).labels == ()


def test_evaluate_decides_on_val_once_and_reports_both(
    tiny_finetuned: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_finetuned, run)
    (run / "postprocessing.json").unlink(missing_ok=True)
    metrics = evaluate(run, overlays=0)
    saved = json.loads((run / "postprocessing.json").read_text())
    assert saved["split"] == "val" and saved["volumes"] > 0
    assert set(saved["per_class"]) == {"RV", "MYO", "LV"}
    pp = metrics["postprocessed"]
    assert set(pp["dice_3d"]) == {"RV", "MYO", "LV", "mean"}
    applied = {n for n, v in saved["per_class"].items() if v["applied"]}
    assert set(pp["applied_to"]) == applied
    for name in {"RV", "MYO", "LV"} - applied:  # untouched structures: identical scores
        assert pp["dice_3d"][name] == metrics["dice_3d"][name]
    # a saved decision is used as it is, never re-decided (here: on the test set)
    forced = PostProcessing((1, 2, 3), {}, "val", 1)
    (run / "postprocessing.json").write_text(json.dumps(forced.to_dict()))
    again = evaluate(run, overlays=0)
    assert again["postprocessed"]["applied_to"] == ["RV", "MYO", "LV"]
    assert "postprocessed" not in evaluate(run, overlays=0, postprocess=False)


def test_predict_applies_the_runs_decision(tiny_finetuned: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_finetuned, run)
    src = builders.make_h5(tmp_path / "h5", n_patients=1, frames=(1,))
    (run / "postprocessing.json").write_text(
        json.dumps(PostProcessing((1, 2, 3), {}, "val", 1).to_dict())
    )
    (with_pp,) = predict(run, src, tmp_path / "a", overlays=False)
    (without,) = predict(run, src, tmp_path / "b", overlays=False, postprocess=False)
    with h5py.File(with_pp) as a, h5py.File(without) as b:
        post, raw = a["prediction"][()], b["prediction"][()]
    for c in (1, 2, 3):
        assert ndimage.label(post == c, np.ones((3, 3, 3)))[1] <= 1
    assert np.array_equal(post, keep_largest(raw, (1, 2, 3)))
