"""A tiny fine-tune on the phantom: every output is written and EF is recovered."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from medssl.configs import FINETUNE_PRESETS, FinetuneConfig, preset
from medssl.data.cache_write import prepare_cache
from medssl.data.phantom import generate_phantom
from medssl.evaluation.evaluate import evaluate
from medssl.training.finetune import finetune

#: Largest accepted |predicted − true| LV ejection fraction, in percentage points,
#: after a 240-step ResNet-18 fine-tune on 8 phantom patients.
EF_TOLERANCE = 10.0


@pytest.mark.slow
def test_phantom_finetune_recovers_ejection_fraction(tmp_path: Path) -> None:
    generate_phantom(tmp_path / "ph", patients=8, seed=5, n_frames=4)
    cache = prepare_cache(tmp_path / "ph", tmp_path / "cache").path
    run = tmp_path / "run"
    cfg = preset(
        FinetuneConfig,
        FINETUNE_PRESETS,
        "cpu-small",
        [
            f"data={cache}",
            f"out={run}",
            "steps=240",
            "val_every_steps=60",
            "batch_size=8",
            "crop=128",
            "lr=1e-3",
            "warmup_steps=20",
            "runtime.num_workers=0",
        ],
    )
    finetune(cfg, progress=False)
    for name in ("config.yaml", "curve.csv", "best.safetensors", "result.json"):
        assert (run / name).exists(), name
    metrics = evaluate(run)
    assert (run / "metrics.json").exists() and (run / "per_case.csv").exists()
    assert list((run / "overlays").glob("*.png"))
    with (run / "clinical.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows, "no patient with ED and ES in the test split"
    truth = json.loads((tmp_path / "ph" / "phantom_truth.json").read_text())["patients"]
    for row in rows:
        # the reference (ground-truth label maps) equals the phantom's stored truth
        assert float(row["ref_LV_EF"]) == pytest.approx(truth[row["patient"]]["lv_ef"], abs=1e-6)
        assert float(row["phantom_LV_EF_abs_error"]) < EF_TOLERANCE, row
    assert metrics["dice_3d"]["LV"] > 0.8
