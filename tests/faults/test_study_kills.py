"""A study driver SIGKILLed 5 times at random moments still ends with exactly the
expected results: none missing, none duplicated, the table of an uninterrupted study."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from medssl.experiments import store
from medssl.experiments.collect import collect
from tests.experiments.test_study import TINY_FINETUNE_SET, TINY_PRETRAIN_SET

ROOT = Path(__file__).resolve().parents[2]


def _study(cache: Path) -> dict:
    return {
        "name": "killed",
        "data": str(cache),
        "domain": "tiny",
        "pipelines": ["random", "byol-tiny"],
        "budgets": {"kind": "slices", "values": [2, 4]},
        "seeds": [0, 1],
        "pretrain": {
            "preset": "paper",
            "set": {**TINY_PRETRAIN_SET, "max_steps": 8, "epochs": 8, "ckpt_every_steps": 2},
        },
        "finetune": {
            "preset": "paper",
            "set": {**TINY_FINETUNE_SET, "steps": 8, "ckpt_every_steps": 2, "val_every_steps": 4},
        },
    }


def _table(root: Path) -> pd.DataFrame:
    results, _ = collect(root)
    # run_dir and wall_s (each job's measured wall time) differ between two runs of a study
    results = results.drop(columns=["run_dir", "wall_s"])
    return results.sort_values("run_id").reset_index(drop=True)


@pytest.mark.slow
def test_driver_killed_five_times(tiny_cache: Path, tmp_path: Path) -> None:
    study_file = tmp_path / "study.yaml"
    study_file.write_text(yaml.safe_dump(_study(tiny_cache)))
    # the reference runs the same command, uninterrupted, in a fresh process like the
    # killed drivers: the comparison is then of the kills alone, not of this test
    # process's state after a thousand other tests
    ref = tmp_path / "ref"
    ref_cmd = [sys.executable, "-m", "medssl", "study", "run", str(study_file), "--out", str(ref)]
    done = subprocess.run(ref_cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    root = tmp_path / "killed"
    cmd = [sys.executable, "-m", "medssl", "study", "run", str(study_file), "--out", str(root)]
    rng = random.Random(5)
    kills = 0
    while kills < 5:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(4.0, 12.0))
        if proc.poll() is not None:  # finished before the kill: the study is too short
            break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
    assert kills == 5, "the study finished before it was killed five times"
    final = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert final.returncode == 0, final.stderr[-3000:]
    plan = json.loads((root / "plan.json").read_text())
    assert all(store.is_done(root, j["id"]) for j in plan["jobs"])  # 0 missing
    table = _table(root)
    assert not table["run_id"].duplicated().any()  # 0 duplicates
    expected = _table(ref)
    assert len(table) == len(expected) == 8
    pd.testing.assert_frame_equal(table, expected)
