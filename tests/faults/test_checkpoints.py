"""Damaged checkpoints and full disks never cost the last good checkpoint."""

from __future__ import annotations

import errno
import logging
import random
import shutil
from pathlib import Path

import lightning.fabric.plugins.io.torch_io as torch_io
import pytest
import torch

from medssl.overrides import save_yaml
from medssl.training.callbacks import LAST_CKPT, PREVIOUS_CKPT, AtomicCheckpoint
from medssl.training.finetune import finetune
from medssl.training.rundir import checkpoint_problem, resume_checkpoint
from tests.conftest import tiny_finetune_config as _cfg


def _step(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])


@pytest.fixture(scope="module")
def finished(tiny_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "run"
    finetune(_cfg(tiny_cache, out, "steps=12", "ckpt_every_steps=4"), progress=False)
    return out


def test_keeps_last_and_previous(finished: Path) -> None:
    folder = finished / "checkpoints"
    # steps=12, ckpt_every_steps=4 (val_every_steps=4: each save waits for that step's
    # validation): checkpoints at steps 4, 8 and 12; the step-12 write rotated step 8's
    # file to previous.ckpt (the final-batch save at step 12 is the same save, no rotation)
    assert _step(folder / LAST_CKPT) == 12
    assert _step(folder / PREVIOUS_CKPT) == 8
    assert checkpoint_problem(folder / PREVIOUS_CKPT) is None
    assert checkpoint_problem(folder / LAST_CKPT) is None


def test_random_damage_is_detected_and_skipped(
    finished: Path, tmp_path: Path, tiny_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    (run / "result.json").unlink()
    last = run / "checkpoints" / LAST_CKPT
    good = last.read_bytes()
    rng = random.Random(0)
    cfg = _cfg(tiny_cache, run, "steps=12", "ckpt_every_steps=4")
    save_yaml(cfg, run / "config.yaml")  # the copy lives at another --out
    damages = [("cut", rng.randrange(1, len(good))) for _ in range(10)]
    damages += [("flip", rng.randrange(64, len(good) - 64)) for _ in range(10)]
    detected = 0
    for how, at in damages:
        if how == "cut":
            last.write_bytes(good[:at])
        else:
            last.write_bytes(good[:at] + bytes([good[at] ^ 0xFF]) + good[at + 1 :])
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            chosen = resume_checkpoint(run, cfg, resume=True)
        if checkpoint_problem(last) is None:
            # a flipped byte in zip padding can be harmless; then the file must still load
            assert chosen == last and _step(last) == 12
            continue
        detected += 1
        assert chosen == run / "checkpoints" / PREVIOUS_CKPT, (how, at)
        assert f"{last} is damaged" in caplog.text
    assert detected >= 18, detected
    last.write_bytes(good[: len(good) // 3])
    result = finetune(cfg, resume=True, progress=False)  # resumes from previous.ckpt
    assert result.steps == 12
    ref = torch.load(finished / "checkpoints" / LAST_CKPT, weights_only=True)["state_dict"]
    new = torch.load(last, weights_only=True)["state_dict"]
    assert all(torch.equal(ref[k], new[k]) for k in ref)


def test_full_disk_keeps_the_last_good_checkpoint(
    tiny_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    original = torch_io._atomic_save

    def no_space_after_step_4(checkpoint: dict, filepath) -> None:
        if checkpoint["global_step"] > 4:
            Path(filepath).write_bytes(b"partial")  # the write got this far
            raise OSError(errno.ENOSPC, "No space left on device")
        original(checkpoint, filepath)

    monkeypatch.setattr(torch_io, "_atomic_save", no_space_after_step_4)
    run = tmp_path / "run"
    with caplog.at_level(logging.ERROR):
        result = finetune(_cfg(tiny_cache, run, "steps=12", "ckpt_every_steps=2"), progress=False)
    assert result.steps == 12  # training went on
    assert "No space left on device" in caplog.text and "previous checkpoint is kept" in caplog.text
    folder = run / "checkpoints"
    assert _step(folder / LAST_CKPT) == 4 and checkpoint_problem(folder / LAST_CKPT) is None
    assert not list(folder.glob(".*.tmp"))


class _Trainer:
    """Just enough of a Trainer for AtomicCheckpoint.save."""

    global_step = 7
    is_global_zero = True

    def __init__(self, module: torch.nn.Module) -> None:
        self.lightning_module = module

        class _Strategy:
            def barrier(self) -> None:
                pass

        self.strategy = _Strategy()

    def save_checkpoint(self, path: Path) -> None:
        torch.save({"global_step": self.global_step, "state_dict": {}}, path)


def test_nan_model_never_overwrites_a_good_checkpoint(tmp_path: Path, caplog) -> None:
    module = torch.nn.Linear(3, 2)
    cb = AtomicCheckpoint(tmp_path)
    assert cb.save(_Trainer(module))
    before = (tmp_path / LAST_CKPT).read_bytes()
    with torch.no_grad():
        module.weight[0, 0] = float("nan")
    with caplog.at_level(logging.ERROR):
        assert not cb.save(_Trainer(module))
    assert "non-finite parameters" in caplog.text
    assert (tmp_path / LAST_CKPT).read_bytes() == before
