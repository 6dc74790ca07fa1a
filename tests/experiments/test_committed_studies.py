"""The study reports committed under docs/ are what their committed runs give: each is
regenerated from the files git tracks (what a fresh clone has: no weights, checkpoints or
overlays) and must match byte for byte (issue 15: "``medssl report`` on a fresh clone
regenerates the committed report's tables byte for byte")."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from medssl.experiments.report import study_report

ROOT = Path(__file__).resolve().parents[2]
STORES = ["docs/acdc-cpu-study", "docs/methods-cpu-study/store"]


def _committed_copy(store: str, dst: Path) -> Path:
    """``store`` as the last commit has it (not the working tree, where a running study
    may be writing)."""
    dst.mkdir(parents=True)
    try:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", "HEAD", store],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"not a git checkout with {store} committed")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dst, filter="data")
    return dst / store


@pytest.mark.parametrize("store", STORES)
def test_committed_report_regenerates_from_committed_runs(store: str, tmp_path: Path) -> None:
    copy = _committed_copy(store, tmp_path / "clone")
    committed = (copy / "report.md").read_text()
    study_report(copy)
    regenerated = (copy / "report.md").read_text()
    assert regenerated == committed, (
        f"{store}/report.md is not what its committed runs give: run `medssl report {store}` "
        "and commit the result"
    )
