"""BYOL pretraining runs end to end: outputs, strict encoder files, resume, DDP."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import load_file

from medssl.overrides import ConfigError
from medssl.training.pretrain import pretrain
from tests.conftest import TINY_PRETRAIN
from tests.conftest import tiny_pretrain_config as _cfg


def _losses(run: Path) -> list[float]:
    with (run / "logs" / "metrics.csv").open() as fh:
        return [float(r["loss"]) for r in csv.DictReader(fh) if r.get("loss")]


def test_pretrain_writes_strict_encoders_and_lowers_loss(tiny_cache: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = pretrain(_cfg(tiny_cache, run, "epochs=6"), progress=False)
    names = sorted(p.name for p in result.encoders)
    assert names == [f"encoder_epoch_{e:03d}.safetensors" for e in range(7)]
    for name in (
        "config.yaml",
        "split.json",
        "init.json",
        "result.json",
        "encoder_last.safetensors",
    ):
        assert (run / name).exists(), name
    model = timm.create_model("resnet18", num_classes=0, in_chans=1)
    first, last = load_file(run / names[0]), load_file(run / "encoder_last.safetensors")
    model.load_state_dict(last, strict=True)
    assert torch.equal(last["conv1.weight"], load_file(run / names[-1])["conv1.weight"])
    assert not torch.equal(first["layer4.1.conv2.weight"], last["layer4.1.conv2.weight"])
    losses = _losses(run)
    k = len(losses) // 4
    assert sum(losses[-k:]) / k < sum(losses[:k]) / k
    with (run / "logs" / "metrics.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("online_std")]
    assert all(0 < float(r["online_std"]) < 1 for r in rows)
    assert float(rows[-1]["tau"]) > float(rows[0]["tau"]) >= 0.99
    # result.json keeps the per-epoch loss curve (committed with a study; logs are not)
    curve = json.loads((run / "result.json").read_text())["loss_per_epoch"]
    assert [c["epoch"] for c in curve] == [float(e) for e in range(6)]
    first_epoch = [float(r["loss"]) for r in rows if r["epoch"] == "0" and r.get("loss")]
    assert curve[0]["loss"] == pytest.approx(sum(first_epoch) / len(first_epoch))
    # compile=auto: a CPU run stays eager and says why; its first step was timed
    compiled = json.loads((run / "result.json").read_text())["compile"]
    assert compiled["compiled"] is False and "not on a GPU" in compiled["reason"]
    assert 0 < compiled["first_step_s"] < 600


def test_refuses_to_overwrite_a_started_run(tiny_cache: Path, tmp_path: Path) -> None:
    cfg = _cfg(tiny_cache, tmp_path / "run", "max_steps=2")
    pretrain(cfg, progress=False)
    with pytest.raises(ConfigError, match="--resume"):
        pretrain(cfg, progress=False)
    with pytest.raises(ConfigError, match="another config"):
        pretrain(_cfg(tiny_cache, tmp_path / "run", "max_steps=3"), progress=False)
    assert pretrain(cfg, resume=True, progress=False).steps == 2
    # a run recorded before compile=auto (compile: false) is the same run, resumable
    eager = _cfg(tiny_cache, tmp_path / "run", "max_steps=2", "runtime.compile=false")
    assert cfg.runtime.compile == "auto" and eager != cfg
    with pytest.raises(ConfigError, match="--resume"):  # not "another config"
        pretrain(eager, progress=False)


def _cli(cache: Path, out: Path, *extra: str) -> list[str]:
    sets = [a for item in TINY_PRETRAIN for a in ("--set", item)]
    return [
        sys.executable,
        "-m",
        "medssl",
        "pretrain",
        "--data",
        str(cache),
        "--out",
        str(out),
        *sets,
        *extra,
    ]


@pytest.mark.slow
def test_killed_run_resumes_to_identical_weights(tiny_cache: Path, tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    pretrain(_cfg(tiny_cache, ref, "epochs=3", "ckpt_every_steps=2"), progress=False)
    run = tmp_path / "killed"
    args = _cli(tiny_cache, run, "--set", "epochs=3", "--set", "ckpt_every_steps=2")
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = run / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run / "result.json").exists(), "run finished before it could be killed"
    subprocess.run([*args, "--resume"], check=True, capture_output=True)
    a, b = load_file(ref / "encoder_last.safetensors"), load_file(run / "encoder_last.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # the step log holds every step once, as the uninterrupted run's (Lightning's CSV
    # writer used to delete it on resume: the loss curve lost every epoch before the kill)
    assert _step_losses(run) == pytest.approx(_step_losses(ref), abs=1e-6)
    curve = [json.loads((r / "result.json").read_text())["loss_per_epoch"] for r in (ref, run)]
    assert [e["epoch"] for e in curve[1]] == [e["epoch"] for e in curve[0]] == [0.0, 1.0, 2.0]
    assert [e["loss"] for e in curve[1]] == pytest.approx([e["loss"] for e in curve[0]], abs=1e-6)


def _step_losses(run: Path) -> dict[int, float]:
    with (run / "logs" / "metrics.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("loss")]
    steps = [int(r["step"]) for r in rows]
    assert len(steps) == len(set(steps)), f"{run}: a step logged twice"
    return {int(r["step"]): float(r["loss"]) for r in rows}


@pytest.mark.slow
def test_two_process_cpu_ddp(tiny_cache: Path, tmp_path: Path) -> None:
    import json

    import yaml

    run = tmp_path / "ddp"
    args = _cli(tiny_cache, run, "--devices", "2", "--set", "epochs=1")
    args.insert(args.index("pretrain"), "-v")  # -v: Lightning's start-up log of every rank
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # both processes started and joined one process group
    for rank in (0, 1):
        assert f"GLOBAL_RANK: {rank}, MEMBER: {rank + 1}/2" in proc.stderr, proc.stderr[-3000:]
    assert "Starting with 2 processes" in proc.stderr
    # and none of them crashed (rank 0's exit code does not report the other rank's)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert (run / "result.json").exists() and (run / "encoder_epoch_001.safetensors").exists()
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["runtime"]["devices"] == 2 and config["runtime"]["num_nodes"] == 1
    # each rank takes its own half of every epoch: half the steps of a one-process run
    batch = config["batch_size"]
    pool = json.loads((run / "pool.json").read_text())
    assert pool["slices"] // batch >= 2  # enough slices for two per-rank batches
    assert pool["steps_per_epoch"] == pool["slices"] // (batch * 2)
    result = json.loads((run / "result.json").read_text())
    assert result["steps"] == pool["steps_per_epoch"]  # one epoch
    assert pool["world_size"] == result["world_size"] == 2  # what the Trainer really ran
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == result["steps"]
    assert ckpt["medssl"]["position"] == [0, result["steps"]]
