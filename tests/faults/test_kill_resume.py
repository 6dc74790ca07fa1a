"""SIGKILL at 20 random steps (some in the middle of a checkpoint write), SIGTERM and
SIGUSR1: every resumed run ends bit-identical to an uninterrupted one."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from medssl.data.cache_write import prepare_cache
from medssl.overrides import save_yaml
from tests import builders
from tests.conftest import (
    TINY_FINETUNE,
    TINY_PRETRAIN,
    tiny_finetune_config,
    tiny_method_config,
    tiny_pretrain_config,
)

ROOT = Path(__file__).resolve().parents[2]
TOTAL, INTERVAL, KILLS, IN_WRITE = 45, 3, 20, 5
PREEMPTED_EXIT = 3


def _config(kind: str, cache: Path, out: Path):
    if kind == "pretrain":
        extra = [f"max_steps={TOTAL}", "epochs=1000", f"ckpt_every_steps={INTERVAL}"]
        return tiny_pretrain_config(cache, out, *extra)
    extra = [f"steps={TOTAL}", f"ckpt_every_steps={INTERVAL}", "val_every_steps=7"]
    return tiny_finetune_config(cache, out, *extra)


def _clean_env() -> dict[str, str]:
    """The environment without what earlier tests in this process may have exported
    (Lightning's seed and thread variables): each piece runs as a fresh command would."""
    drop = ("PL_", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def _run(kind: str, config: Path, mode: str, step: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.faults.killer",
            kind,
            str(config),
            mode,
            str(step),
            "--resume",
        ],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _kill_plan(kind: str) -> list[tuple[int, str]]:
    """20 distinct steps; 5 of them (checkpoint steps) killed inside the write."""
    rng = random.Random(f"kill-{kind}")
    ckpt_steps = [s for s in range(INTERVAL, TOTAL, INTERVAL)]
    in_write = rng.sample(ckpt_steps, IN_WRITE)
    others = [s for s in range(1, TOTAL) if s not in in_write]
    after = rng.sample(others, KILLS - IN_WRITE)
    plan = [(s, "ckpt") for s in in_write] + [(s, "step") for s in after]
    return sorted(plan)


def _state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def _assert_same_weights(ref: Path, run: Path, kind: str) -> None:
    a, b = _state(ref / "checkpoints" / "last.ckpt"), _state(run / "checkpoints" / "last.ckpt")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    if kind == "pretrain":
        ea = load_file(ref / "encoder_last.safetensors")
        eb = load_file(run / "encoder_last.safetensors")
        assert all(torch.equal(ea[k], eb[k]) for k in ea)
    else:
        assert (ref / "curve.csv").read_text() == (run / "curve.csv").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pretrain", "finetune"])
def test_sigkill_at_20_random_steps_resumes_bit_identically(kind: str, tmp_path: Path) -> None:
    # a cache of its own (the session's shared one is used by many other tests)
    tiny_cache = prepare_cache(
        builders.make_acdc(tmp_path / "src", n_patients=6, n_frames=4), tmp_path / "cache"
    ).path
    # the uninterrupted reference runs in a fresh process too, like every resumed piece
    ref = tmp_path / "ref"
    save_yaml(_config(kind, tiny_cache, ref), tmp_path / "ref.yaml")
    done = _run(kind, tmp_path / "ref.yaml", "none", 0)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "killed"
    config = tmp_path / "config.yaml"
    save_yaml(_config(kind, tiny_cache, run), config)
    redone = []
    for step, mode in _kill_plan(kind):
        proc = _run(kind, config, mode, step)
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
        start = int(proc.stdout.split("RESUMED_FROM ")[1].split()[0])
        redone.append((step, mode, start))
    final = _run(kind, config, "none", 0)
    assert final.returncode == 0, final.stderr[-3000:]
    assert (run / "result.json").exists()
    # each resume started at most one checkpoint interval before the previous kill
    kills = [s for s, _, _ in redone]
    starts = [start for _, _, start in redone[1:]] + [
        int(final.stdout.split("RESUMED_FROM ")[1].split()[0])
    ]
    for killed_at, resumed_from in zip(kills, starts, strict=True):
        assert 0 <= killed_at - resumed_from <= INTERVAL, (killed_at, resumed_from)
    _assert_same_weights(ref, run, kind)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["simclr", "densecl", "mim"])
def test_methods_resume_bit_identically(method: str, tmp_path: Path) -> None:
    """One contrastive, one dense (its queues are checkpointed) and the masked method:
    killed after a step and inside a checkpoint write, each resumes bit-identically."""
    cache = prepare_cache(
        builders.make_acdc(tmp_path / "src", n_patients=6, n_frames=4), tmp_path / "cache"
    ).path
    extra = ["max_steps=14", "epochs=1000", f"ckpt_every_steps={INTERVAL}"]
    ref, run = tmp_path / "ref", tmp_path / "killed"
    save_yaml(tiny_method_config(cache, ref, method, *extra), tmp_path / "ref.yaml")
    save_yaml(tiny_method_config(cache, run, method, *extra), tmp_path / "config.yaml")
    done = _run("pretrain", tmp_path / "ref.yaml", "none", 0)
    assert done.returncode == 0, done.stderr[-3000:]
    for step, mode in [(4, "step"), (9, "ckpt")]:
        proc = _run("pretrain", tmp_path / "config.yaml", mode, step)
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    final = _run("pretrain", tmp_path / "config.yaml", "none", 0)
    assert final.returncode == 0, final.stderr[-3000:]
    # the write at step 9 died: resumed from an earlier checkpoint (step 6 or epoch end 8)
    assert 6 <= int(final.stdout.split("RESUMED_FROM ")[1].split()[0]) < 9
    _assert_same_weights(ref, run, "pretrain")
    a = torch.load(ref / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    b = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    for name, tensor in a["medssl"]["method_buffers"].items():
        assert torch.equal(tensor, b["medssl"]["method_buffers"][name]), name


def _cli(kind: str, cache: Path, out: Path, sets: list[str]) -> list[str]:
    args = [a for item in sets for a in ("--set", item)]
    return [sys.executable, "-m", "medssl", kind, "--data", str(cache), "--out", str(out), *args]


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "sig"), [("finetune", "SIGTERM"), ("pretrain", "SIGUSR1")])
def test_preemption_signal_saves_at_step_boundary_and_exits_cleanly(
    kind: str, sig: str, tiny_cache: Path, tmp_path: Path
) -> None:
    if kind == "finetune":
        sets = [*TINY_FINETUNE, "steps=400", "ckpt_every_steps=1000", "val_every_steps=1000"]
    else:
        sets = [*TINY_PRETRAIN, "max_steps=400", "epochs=1000", "ckpt_every_steps=1000"]
    run = tmp_path / "run"
    proc = subprocess.Popen(
        _cli(kind, tiny_cache, run, sets), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not (run / "logs").exists():
        time.sleep(0.05)
    time.sleep(3.0)  # well inside training
    os.kill(proc.pid, getattr(signal, sig))
    _, err = proc.communicate(timeout=120)
    text = err.decode()
    assert proc.returncode == PREEMPTED_EXIT, text[-3000:]
    assert "Traceback" not in text
    assert f"pre-empted: {run}: {sig} received; checkpoint saved at step" in text
    said = int(text.split("checkpoint saved at step ")[1].split(",")[0])
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == said and 0 < said < 400
    assert not (run / "result.json").exists()
