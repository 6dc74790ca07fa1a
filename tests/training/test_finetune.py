"""Fine-tuning runs: outputs, fixed step count, budgets from the data layer, resume."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

from medssl.data.cache_index import SliceCache
from medssl.data.splits import Split, budget_slices
from medssl.models.unet import build_unet
from medssl.training.finetune import finetune
from tests.conftest import TINY_FINETUNE
from tests.conftest import tiny_finetune_config as _cfg


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
    assert [int(r["step"]) for r in rows] == [4, 8]
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
    assert result["steps"] == 8 and result["steps_to_95"] in (4.0, 8.0)


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
    subprocess.run([*args, "--resume"], check=True, capture_output=True)
    a = torch.load(tmp_path / "ref" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(ckpt, weights_only=True)["state_dict"]
    for key in a:
        assert torch.equal(a[key], b[key]), key
    ref_curve = (tmp_path / "ref" / "curve.csv").read_text()
    assert (run / "curve.csv").read_text() == ref_curve
