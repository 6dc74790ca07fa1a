"""RunDir's deletion of resume state: only for finished runs, never their results."""

from __future__ import annotations

from pathlib import Path

import pytest

from medssl.artifacts.rundir import RunDir


def _run(tmp_path: Path) -> RunDir:
    run = RunDir(tmp_path / "run").mkdir()
    run.checkpoints.mkdir(parents=True)
    run.last_ckpt.write_bytes(b"x" * 1000)
    run.previous_ckpt.write_bytes(b"y" * 24)
    run.best_weights.write_bytes(b"w")
    return run


def test_an_unfinished_run_keeps_its_resume_state(tmp_path: Path) -> None:
    run = _run(tmp_path)
    with pytest.raises(RuntimeError, match="not finished"):
        run.drop_resume_state()
    assert run.last_ckpt.is_file() and run.previous_ckpt.is_file()


def test_a_finished_run_loses_only_its_checkpoints(tmp_path: Path) -> None:
    run = _run(tmp_path)
    run.save_result({"steps": 8})
    assert run.drop_resume_state() == 1024
    assert not run.checkpoints.exists()
    assert run.best_weights.is_file() and run.finished
    assert run.drop_resume_state() == 0  # nothing left to delete
