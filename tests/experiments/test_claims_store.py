"""Study claim files: created whole, and an empty one left by a killed writer of an older
version does not block the job forever (a driver killed between creating and writing its
claim once hung every later driver of that study)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from medssl.artifacts.study import StudyDir
from medssl.experiments import store


def test_a_claim_is_complete_from_the_moment_it_exists(tmp_path: Path) -> None:
    claim = store.try_claim(tmp_path, "job")
    assert claim is not None
    path = StudyDir(tmp_path).claim_file("job")
    assert '"pid"' in path.read_text() and store.try_claim(tmp_path, "job") is None
    assert not list(StudyDir(tmp_path).claims.glob("*.tmp"))  # no temporary left behind
    claim.release()


def test_an_empty_claim_is_stale_once_old(tmp_path: Path) -> None:
    claims = StudyDir(tmp_path).claims
    claims.mkdir(parents=True)
    path = StudyDir(tmp_path).claim_file("job")
    path.write_text("")  # a writer killed between creating and filling it
    assert store.try_claim(tmp_path, "job") is None  # young: maybe being written
    old = time.time() - store.UNREADABLE_AFTER_S - 5
    os.utime(path, (old, old))
    claim = store.try_claim(tmp_path, "job")
    assert claim is not None and "job" in store.live_claims(tmp_path)
    claim.release()
