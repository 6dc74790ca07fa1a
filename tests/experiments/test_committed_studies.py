"""The study reports committed under docs/ are what their committed runs give: each is
regenerated from the files git tracks (what a fresh clone has: no weights, checkpoints or
overlays) and must match byte for byte (issue 15: "``medssl report`` on a fresh clone
regenerates the committed report's tables byte for byte")."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from medssl.experiments.report import study_report

ROOT = Path(__file__).resolve().parents[2]
STORES = ["docs/acdc-cpu-study", "docs/methods-cpu-study/store"]


def _tracked_copy(store: str, dst: Path) -> Path:
    try:
        files = subprocess.run(
            ["git", "ls-files", "-z", store], cwd=ROOT, capture_output=True, check=True
        ).stdout.split(b"\0")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = [f.decode() for f in files if f]
    if not files:
        pytest.skip(f"{store} is not committed")
    for name in files:
        target = dst / Path(name).relative_to(store)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, target)
    return dst


@pytest.mark.parametrize("store", STORES)
def test_committed_report_regenerates_from_committed_runs(store: str, tmp_path: Path) -> None:
    copy = _tracked_copy(store, tmp_path / "store")
    committed = (copy / "report.md").read_text()
    study_report(copy)
    regenerated = (copy / "report.md").read_text()
    assert regenerated == committed, (
        f"{store}/report.md is not what its committed runs give: run `medssl report {store}` "
        "and commit the result"
    )
