"""The run entry points turn on MKL's conditional numerical reproducibility and turn off
its dynamic threading before any computation (without them a CPU fine-tune ended
differently in about one process in seven), values the user exported win, and importing
medssl alone changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

MATMUL = (
    "import torch; a = torch.ones(2, 8, 8); (a @ a).sum(); "
    "import os; print('env', os.environ.get('MKL_CBWR'), os.environ.get('MKL_DYNAMIC'))"
)
#: The ``medssl`` command's entry point (``--version`` exits right after the settings).
CLI = "from medssl.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
SNIPPET = CLI + MATMUL


def _run(env: dict[str, str], code: str = SNIPPET) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "MKL_VERBOSE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


needs_mkl = pytest.mark.skipif(not torch.backends.mkl.is_available(), reason="PyTorch without MKL")


@needs_mkl
def test_mkl_runs_in_reproducible_mode_after_the_entry_point() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MKL_CBWR", "MKL_DYNAMIC")}
    out = _run(env)
    assert "env AUTO,STRICT FALSE" in out
    calls = [line for line in out.splitlines() if "SGEMM" in line]
    assert calls, out[-2000:]
    assert all("CNR:AUTO,STRICT" in line and "Dyn:0" in line for line in calls), out[-2000:]


@needs_mkl
def test_a_user_setting_wins() -> None:
    out = _run({**os.environ, "MKL_CBWR": "COMPATIBLE", "MKL_DYNAMIC": "TRUE"})
    assert "env COMPATIBLE TRUE" in out
    calls = [line for line in out.splitlines() if "SGEMM" in line]
    assert calls, out[-2000:]
    assert all("CNR:COMPATIBLE" in line and "Dyn:1" in line for line in calls), out[-2000:]


@needs_mkl
@pytest.mark.parametrize(
    "entry",
    [
        "from medssl.training.reproducible import apply_blas_settings\napply_blas_settings()\n",
        CLI,
    ],
)
def test_every_entry_point_applies_the_settings(entry: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MKL_CBWR", "MKL_DYNAMIC")}
    out = _run(env, entry + MATMUL)
    calls = [line for line in out.splitlines() if "SGEMM" in line]
    assert calls and all("CNR:AUTO,STRICT" in line for line in calls), out[-2000:]


def test_importing_medssl_changes_no_setting() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MKL_CBWR", "MKL_DYNAMIC")}
    out = _run(env, "import medssl, medssl.training.finetune\n" + MATMUL)
    assert "env None None" in out


@needs_mkl
def test_dynamic_threading_is_off_even_when_mkl_started_before_the_settings() -> None:
    """A notebook, a test harness or a study worker imports torch and may compute before
    calling a run entry point: MKL has then read its (unset) environment already. The
    entry point must still turn dynamic threading off (found 2026-12-07: the kill-test
    harness ran with ``Dyn:1`` and its uninterrupted reference run deviated under load)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MKL_CBWR", "MKL_DYNAMIC")}
    early = "import torch\nb = torch.ones(2, 8, 8)\n(b @ b).sum()\nprint('early done')\n"
    entry = "from medssl.training.reproducible import apply_blas_settings\napply_blas_settings()\n"
    out = _run(env, early + entry + MATMUL)
    after = out.split("early done", 1)[1]
    calls = [line for line in after.splitlines() if "SGEMM" in line]
    assert calls, out[-2000:]
    assert all("Dyn:0" in line for line in calls), out[-2000:]
