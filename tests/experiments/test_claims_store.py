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


def test_breaking_a_stale_claim_leaves_only_the_new_claim(tmp_path: Path) -> None:
    claims = StudyDir(tmp_path).claims
    claims.mkdir(parents=True)
    path = StudyDir(tmp_path).claim_file("job")
    path.write_text('{"host": "elsewhere", "pid": 1, "start": 0}')
    old = time.time() - store.STALE_AFTER_S - 5
    os.utime(path, (old, old))
    claim = store.try_claim(tmp_path, "job")
    assert claim is not None
    assert sorted(p.name for p in claims.iterdir()) == ["job.json"]
    claim.release()


def test_sweep_removes_only_old_hidden_leftovers(tmp_path: Path) -> None:
    claims = StudyDir(tmp_path).claims
    claims.mkdir(parents=True)
    old = time.time() - store.UNREADABLE_AFTER_S - 5
    names = {
        ".a.1234abcd.tmp": old,  # a claim's temporary, its writer killed before the link
        ".b.stale-1234abcd": old,  # a broken claim moved aside, its breaker killed
        ".c.5678abcd.tmp": time.time(),  # young: may be a live writer's
        "d.json": old,  # a claim: never litter, whatever its age
    }
    for name, mtime in names.items():
        (claims / name).write_text("{}")
        os.utime(claims / name, (mtime, mtime))
    assert store.sweep_leftovers(tmp_path) == 2
    assert sorted(p.name for p in claims.iterdir()) == [".c.5678abcd.tmp", "d.json"]
    assert store.sweep_leftovers(tmp_path / "no-study") == 0
