"""Validation under DDP: each rank scores its own share of the volumes, the counts are
summed across ranks, and the curve equals the one-process curve for the same weights."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from medssl.artifacts.rundir import RunDir
from medssl.data.cache_read import SliceCache
from medssl.data.datasets import Volumes
from medssl.data.splits import split_for_cache
from medssl.evaluation.counts import SegmentationCounts
from medssl.overrides import save_yaml
from medssl.training.validation import ValidationScores, VolumeShard
from tests.conftest import tiny_finetune_config

ROOT = Path(__file__).resolve().parents[2]


def test_shards_are_disjoint_cover_every_volume_and_have_equal_length() -> None:
    volumes = [{"volume": v} for v in range(5)]
    shards = [VolumeShard(volumes, rank, 2) for rank in range(2)]
    assert [len(s) for s in shards] == [3, 3]
    items = [s[i] for s in shards for i in range(len(s))]
    scored = [it["volume"] for it in items if it["scored"]]
    assert sorted(scored) == list(range(5))  # each volume scored exactly once
    assert [it["scored"] for it in items].count(False) == 1  # one padding repeat
    assert VolumeShard(volumes, 0, 1).indices() == list(range(5))
    assert len(VolumeShard([], 0, 2)) == 0


def test_synced_counts_equal_the_counts_of_one_process() -> None:
    gen = torch.Generator().manual_seed(0)
    preds = [torch.randint(0, 4, (3, 8, 8), generator=gen) for _ in range(5)]
    labels = [torch.randint(0, 4, (3, 8, 8), generator=gen) for _ in range(5)]
    losses = [torch.rand((), generator=gen) for _ in range(5)]
    names = {1: "A", 2: "B", 3: "C"}
    whole = ValidationScores((1, 2, 3), names)
    ranks = [ValidationScores((1, 2, 3), names) for _ in range(2)]
    for i, (p, t, loss) in enumerate(zip(preds, labels, losses, strict=True)):
        whole.update(p, t, loss)
        ranks[i % 2].update(p, t, loss)
    # all_reduce, simulated: what each rank sends (from a copy), then each gets the sums
    sent: list[list[torch.Tensor]] = [[], []]
    for r in range(2):
        copy.deepcopy(ranks[r]).sync("cpu", reduce=lambda t, r=r: sent[r].append(t.clone()) or t)
    sums = [a + b for a, b in zip(*sent, strict=True)]
    a = whole.compute()
    assert "slice_iou/A" in a
    for r in range(2):
        calls = iter(sums)
        ranks[r].sync("cpu", reduce=lambda t, calls=calls: next(calls))
        b = ranks[r].compute()
        assert a.keys() == b.keys() and ranks[r].volumes == 5
        for key in a:
            assert a[key] == pytest.approx(b[key], abs=1e-6, nan_ok=True), key


def test_a_rank_without_volumes_takes_part_with_zeros() -> None:
    counts = SegmentationCounts((1, 2))
    seen: list[torch.Tensor] = []
    counts.sync("cpu", reduce=lambda t: seen.append(t) or t)
    assert seen and float(seen[0].abs().sum()) == 0.0
    with pytest.raises(RuntimeError):
        counts.compute()  # nothing was scored on any rank


def _clean_env() -> dict[str, str]:
    drop = ("PL_", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def _run(mode: str, config: Path, out: Path, devices: int) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.training.ddp_validation", mode, str(config), str(out),
         str(devices)],
        cwd=ROOT, env=_clean_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]


def _seen(out: Path, world: int) -> list[list[list]]:
    return [json.loads((out / f"seen_rank{r}.json").read_text()) for r in range(world)]


def _val_volumes(cache: Path) -> list[int]:
    c = SliceCache.open(cache)
    return sorted(Volumes(c, split_for_cache(c).val).volume_ids)


@pytest.mark.slow
def test_two_process_validation_scores_each_volume_once_and_equals_one_process(
    tiny_cache: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    save_yaml(tiny_finetune_config(tiny_cache, tmp_path / "unused"), config)
    _run("validate", config, tmp_path / "one", 1)
    _run("validate", config, tmp_path / "two", 2)
    volumes = _val_volumes(tiny_cache)
    assert len(volumes) >= 2
    ranks = _seen(tmp_path / "two", 2)
    scored = [[v for _, v, s in rank if s] for rank in ranks]
    assert all(scored), scored  # both ranks validated some volumes
    assert sorted(scored[0] + scored[1]) == volumes  # each volume once, none left out
    assert [v for _, v, s in _seen(tmp_path / "one", 1)[0] if s] == volumes
    one, two = RunDir(tmp_path / "one").curve_rows(), RunDir(tmp_path / "two").curve_rows()
    assert len(one) == len(two) == 1 and one[0].keys() == two[0].keys()
    assert "slice_iou/LV" in one[0]
    for key in one[0]:
        assert float(one[0][key]) == pytest.approx(float(two[0][key]), abs=1e-6), key


@pytest.mark.slow
def test_two_process_fine_tune_validates_each_volume_once_per_curve_point(
    tiny_cache: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    cfg = tiny_finetune_config(tiny_cache, tmp_path / "unused", "steps=4", "val_every_steps=2")
    save_yaml(cfg, config)
    run = tmp_path / "ddp"
    _run("fit", config, run, 2)
    rundir = RunDir(run)
    assert rundir.finished and rundir.load_result()["world_size"] == 2
    assert [int(r["step"]) for r in rundir.curve_rows()] == [2, 4]
    volumes = _val_volumes(tiny_cache)
    ranks = _seen(run, 2)
    for step in (2, 4):
        scored = [v for rank in ranks for s, v, ok in rank if ok and s == step]
        assert sorted(scored) == volumes, (step, ranks)
