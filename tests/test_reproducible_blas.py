"""Importing medssl turns on MKL's conditional numerical reproducibility before any
computation (without it a CPU fine-tune ended differently in about one process in five),
and a value the user exported wins."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

SNIPPET = (
    "import medssl, torch; a = torch.ones(2, 8, 8); (a @ a).sum(); "
    "import os; print('env', os.environ.get('MKL_CBWR'))"
)


def _run(env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", SNIPPET],
        env={**env, "MKL_VERBOSE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


needs_mkl = pytest.mark.skipif(not torch.backends.mkl.is_available(), reason="PyTorch without MKL")


@needs_mkl
def test_mkl_runs_in_reproducible_mode_after_import() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    out = _run(env)
    assert "env AUTO,STRICT" in out
    calls = [line for line in out.splitlines() if "SGEMM" in line]
    assert calls and all("CNR:AUTO,STRICT" in line for line in calls), out[-2000:]


@needs_mkl
def test_a_user_setting_wins() -> None:
    out = _run({**os.environ, "MKL_CBWR": "COMPATIBLE"})
    assert "env COMPATIBLE" in out
    calls = [line for line in out.splitlines() if "SGEMM" in line]
    assert calls and all("CNR:COMPATIBLE" in line for line in calls), out[-2000:]
