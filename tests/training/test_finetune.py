"""Fine-tuning runs: outputs, fixed step count, budgets from the data layer, resume."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

from medssl.artifacts.rundir import RunDir
from medssl.data.cache_read import SliceCache
from medssl.data.splits import Split, budget_slices
from medssl.experiments.collect import _curve_summary
from medssl.models.unet import build_unet
from medssl.training.finetune import finetune
from tests.conftest import TINY_FINETUNE
from tests.conftest import tiny_finetune_config as _cfg


def _tiny_setting(key: str) -> int:
    """An integer setting of the tiny fine-tuning config (``key=value`` in TINY_FINETUNE)."""
    (value,) = [item.split("=", 1)[1] for item in TINY_FINETUNE if item.split("=", 1)[0] == key]
    return int(value)


def test_run_outputs(tiny_finetuned: Path) -> None:
    for name in (
        "config.yaml",
        "prepare.json",
        "split.json",
        "budget.json",
        "init.json",
        "curve.csv",
        "best.safetensors",
        "best.json",
        "result.json",
    ):
        assert (tiny_finetuned / name).exists(), name
    with (tiny_finetuned / "curve.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    steps, val_every = _tiny_setting("steps"), _tiny_setting("val_every_steps")
    expected_steps = list(range(val_every, steps + 1, val_every))
    assert expected_steps == [4, 8]  # the tiny config: 8 steps, validation every 4
    assert [int(r["step"]) for r in rows] == expected_steps
    for key in (
        "val_loss",
        "slice_iou/RV",
        "slice_iou/MYO",
        "slice_iou/LV",
        "slice_iou/mean",
        "slice_dice/mean",
    ):
        assert 0.0 <= float(rows[-1][key]) <= 1.0
    best = json.loads((tiny_finetuned / "best.json").read_text())
    assert best["slice_iou/mean"] == max(float(r["slice_iou/mean"]) for r in rows)
    model = build_unet("resnet18", 4, (32, 16, 16, 8, 8))
    model.load_state_dict(load_file(tiny_finetuned / "best.safetensors"), strict=True)
    result = json.loads((tiny_finetuned / "result.json").read_text())
    assert result["steps"] == steps
    # steps-to-95 %: the first curve step whose mean IoU reaches 0.95 × the last value
    ious = [float(r["slice_iou/mean"]) for r in rows]
    expected_95 = next(
        float(r["step"]) for r, v in zip(rows, ious, strict=True) if v >= 0.95 * ious[-1]
    )
    # derived from the curve by medssl.analysis (training writes the raw curve only)
    assert "steps_to_95" not in result and "curve_auc" not in result
    summary = _curve_summary(RunDir(tiny_finetuned).curve_rows())
    assert summary["steps_to_95"] == expected_95, (ious, summary["steps_to_95"])
    assert result["final_val_iou"] == ious[-1] and result["best_val_iou"] == max(ious)
    # curve AUC: trapezoid area over the step span (the curve's mean value)
    area = sum(
        (int(b["step"]) - int(a["step"])) * (va + vb) / 2
        for a, b, va, vb in zip(rows, rows[1:], ious, ious[1:], strict=False)
    )
    assert summary["curve_auc"] == pytest.approx(area / (expected_steps[-1] - expected_steps[0]))


def test_small_budget_same_steps_and_pipeline_independent_subset(
    tiny_cache: Path, tmp_path: Path
) -> None:
    small = finetune(
        _cfg(tiny_cache, tmp_path / "small", "labelled_slices=2", "budget_seed=13"), progress=False
    )
    full = finetune(_cfg(tiny_cache, tmp_path / "full", "init=random"), progress=False)
    assert small.steps == full.steps == 8
    assert small.labelled_slices == 2 and full.labelled_slices > 2
    cache = SliceCache.open(tiny_cache)
    split = Split.load(tmp_path / "small" / "split.json")
    expected = budget_slices(cache, split, 2, seed=13)
    keys = [
        [cache.volume_of(i).patient, cache.volume_of(i).frame, int(cache.index["slice"][i])]
        for i in expected
    ]
    assert json.loads((tmp_path / "small" / "budget.json").read_text())["slices"] == keys


def test_init_from_encoder_file_is_loaded(tiny_cache: Path, tmp_path: Path) -> None:
    import timm

    from medssl.models.weights import save_encoder

    enc = timm.create_model("resnet18", num_classes=0, in_chans=1)
    save_encoder(enc, tmp_path / "enc.safetensors", "resnet18")
    finetune(
        _cfg(
            tiny_cache,
            tmp_path / "run",
            f"init={tmp_path / 'enc.safetensors'}",
            "steps=1",
            "val_every_steps=1",
        ),
        progress=False,
    )
    report = json.loads((tmp_path / "run" / "init.json").read_text())
    assert report["layout"] == "medssl" and report["matched"] == report["expected"] > 0


@pytest.mark.slow
def test_killed_finetune_resumes_identically(tiny_cache: Path, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    import torch

    extra = ["steps=12", "ckpt_every_steps=2", "val_every_steps=3"]
    finetune(_cfg(tiny_cache, tmp_path / "ref", *extra), progress=False)
    run = tmp_path / "killed"
    sets = [a for item in [*TINY_FINETUNE, *extra] for a in ("--set", item)]
    args = [
        sys.executable,
        "-m",
        "medssl",
        "finetune",
        "--data",
        str(tiny_cache),
        "--out",
        str(run),
        *sets,
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = run / "checkpoints" / "last.ckpt"
    while not ckpt.exists() and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # the run was killed part-way: by our SIGKILL, with no result and an earlier checkpoint
    assert proc.returncode == -signal.SIGKILL, f"run ended on its own ({proc.returncode})"
    assert not (run / "result.json").exists(), "run finished before it could be killed"
    killed_at = _ckpt_step(ckpt)
    assert 0 < killed_at < 12, killed_at
    subprocess.run([*args, "--resume"], check=True, capture_output=True)
    result = json.loads((run / "result.json").read_text())
    assert result["steps"] == 12
    ref = torch.load(tmp_path / "ref" / "checkpoints" / "last.ckpt", weights_only=True)
    new = torch.load(ckpt, weights_only=True)
    assert ref["global_step"] == new["global_step"] == 12
    a, b = ref["state_dict"], new["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    ref_curve = (tmp_path / "ref" / "curve.csv").read_text()
    assert (run / "curve.csv").read_text() == ref_curve
    assert [int(r["step"]) for r in csv.DictReader(ref_curve.splitlines())] == [3, 6, 9, 12]
    ref_result = json.loads((tmp_path / "ref" / "result.json").read_text())
    assert result == ref_result


def _ckpt_step(path: Path) -> int:
    import torch

    return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])


def test_split_file_and_explicit_labelled_set(tiny_cache: Path, tmp_path: Path) -> None:
    """A run with ``split`` and ``labelled`` files trains on exactly the listed slices,
    validates on the file's val patients and records both."""
    split_file = tmp_path / "split.json"
    split_file.write_text(
        json.dumps(
            {
                "train": ["patient001", "patient002", "patient003"],
                "val": ["patient004"],
                "test": ["patient005", "patient006"],
            }
        )
    )
    cache = SliceCache.open(tiny_cache)
    ours = [
        [cache.volume_of(i).patient, cache.volume_of(i).frame, int(cache.index["slice"][i])]
        for i in range(len(cache))
        if cache.volume_of(i).labelled and cache.volume_of(i).patient == "patient001"
    ][:3]
    labelled = tmp_path / "labelled.json"
    labelled.write_text(json.dumps({"slices": ours}))
    out = tmp_path / "run"
    r = finetune(
        _cfg(tiny_cache, out, f"split={split_file}", f"labelled={labelled}"), progress=False
    )
    assert r.labelled_slices == 3
    budget = json.loads((out / "budget.json").read_text())
    assert budget["slices"] == ours and budget["labelled_file"] == str(labelled)
    saved = Split.load(out / "split.json")
    assert saved.train == ("patient001", "patient002", "patient003")
    assert saved.val == ("patient004",) and saved.scheme == "file"


def test_labelled_set_excludes_drawn_budgets_and_split_seed(tiny_cache: Path, tmp_path) -> None:
    from medssl.overrides import ConfigError

    labelled = tmp_path / "labelled.json"
    labelled.write_text(json.dumps(["patient003"]))
    with pytest.raises(ConfigError, match="one of"):
        finetune(
            _cfg(tiny_cache, tmp_path / "a", f"labelled={labelled}", "labelled_slices=2"),
            progress=False,
        )
    with pytest.raises(ConfigError, match="not both"):
        finetune(
            _cfg(tiny_cache, tmp_path / "b", f"split={labelled}", "split_seed=1"), progress=False
        )


def test_target_spacing_prepares_the_source_at_that_spacing(
    acdc_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``target_spacing`` on a run resamples its source folder's cache; the run records
    that cache, and a run without it stays on the native grid."""
    monkeypatch.setenv("MEDSSL_CACHE_DIR", str(tmp_path / "caches"))
    for name, extra in (("coarse", ["target_spacing=2.5"]), ("native", [])):
        cfg = _cfg(acdc_source, tmp_path / name, "steps=1", "val_every_steps=1", *extra)
        finetune(cfg, progress=False)
    coarse = SliceCache.open(RunDir(tmp_path / "coarse").load_prepare()["cache"])
    native = SliceCache.open(RunDir(tmp_path / "native").load_prepare()["cache"])
    assert coarse.path != native.path
    assert coarse.volumes[0].spacing[1:] == pytest.approx((2.5, 2.5), rel=0.05)
    assert native.volumes[0].spacing[1:] != pytest.approx((2.5, 2.5), rel=0.05)
