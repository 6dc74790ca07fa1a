"""The study folder: plan, per-run state markers and claim files.

Layout::

    plan.json              jobs (id, kind, meta, depends) and skipped pipelines
    runs/<id>/             each run's own directory (config, checkpoints, results)
    runs/<id>/DONE         written last, atomically: the run and its evaluation finished
    runs/<id>/failed.json  the last failure (traceback); removed when the run succeeds
    claims/<id>.json       who runs the job now: host, pid, start; its mtime is a heartbeat
    ledger.jsonl           one line per job start (audit trail: no cell runs twice)

A claim is written to a temporary file and hard-linked into place (``os.link`` fails if
the claim exists), so of two workers (on one machine or on a shared file system) exactly
one gets it, and a claim is never seen half-written. A claim is stale when its process is gone
(same host) or its heartbeat is older than ``stale_after`` seconds (any host); a
stale claim is broken by renaming it away, which again only one worker can do, and
deleting it; `sweep_leftovers` removes what a killed worker left half-way.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from medssl.artifacts.atomic import write_text
from medssl.artifacts.rundir import RunDir
from medssl.artifacts.study import STUDY_GITIGNORE, StudyDir
from medssl.errors import DataError
from medssl.experiments.plan import Plan
from medssl.overrides import to_dict

#: An unparseable claim older than this is stale (a claim is never written in place).
UNREADABLE_AFTER_S = 30.0
STALE_AFTER_S = 600.0
HEARTBEAT_S = 30.0


def save_plan(plan: Plan, root: Path) -> None:
    jobs = [
        {
            "id": j.id,
            "kind": j.kind,
            "depends": list(j.depends),
            "meta": j.meta,
            "config": to_dict(j.config),
        }
        for j in plan.jobs
    ]
    root.mkdir(parents=True, exist_ok=True)
    study = StudyDir(root)
    body = {"name": plan.name, "jobs": jobs, "skipped": plan.skipped}
    write_text(study.plan_file, json.dumps(body, indent=1))
    have = study.gitignore.read_text().splitlines() if study.gitignore.exists() else []
    if missing := [line for line in STUDY_GITIGNORE if line not in have]:
        # a folder made by an older medssl gets the patterns added since (user lines stay)
        write_text(study.gitignore, "\n".join([*have, *missing]) + "\n")


def reopen_missing_inputs(plan: Plan, root: Path) -> list[str]:
    """Reopen finished jobs whose exported weights a pending job needs but that are gone
    (a study folder committed without weights, or moved to another machine).

    A pending fine-tune starts from files of its (done) pretraining job: ``init`` and
    ``init_decoder``. When one is missing, that pretraining job's run directory is moved
    to ``superseded/<id>.<n>`` (committed: its loss curve and the fingerprints of the
    weights its finished fine-tunes loaded stay in the record) so the job runs again, unless
    its collapse check fired and fine-tuning from it is not allowed (its fine-tunes wait).
    An unfinished run without a checkpoint and without a live claim is moved aside
    (``runs/.<id>.reopened-<hex>``, not committed: nothing of it can be resumed).
    Finished fine-tunes are never touched. Returns the reopened ids.
    """
    study, jobs = StudyDir(root), plan.by_id()
    reopened: list[str] = []
    waiting = collapsed_pretrainings(root, (d for job in plan.jobs for d in job.depends))
    claimed = live_claims(root)
    for job in plan.jobs:
        if is_done(root, job.id):
            continue
        run = study.run(job.id)
        if job.id not in claimed and run.config_file.exists() and not _resumable(run):
            # an unfinished run with nothing to resume (its checkpoints were not kept):
            # its small files may name another machine's paths; start it afresh
            _move_aside(run.path, job.id)
        needed = [getattr(job.config, k, None) for k in ("init", "init_decoder")]
        for dep in job.depends:
            if dep in reopened or not is_done(root, dep) or jobs[dep].kind != "pretrain":
                continue
            if dep in waiting:
                continue  # its fine-tunes wait for a decision: no need for its weights yet
            dep_dir = study.run(dep).path.resolve()
            missing = [
                Path(f)
                for f in needed
                if f and Path(f).resolve().is_relative_to(dep_dir) and not Path(f).exists()
            ]
            if missing and _supersede(study, dep, missing) is not None:
                reopened.append(dep)
    return reopened


def last_encoder_users(root: Path, job_id: str) -> dict[str, str]:
    """The finished fine-tunes that started from pretraining ``job_id``'s last encoder
    (not the per-epoch encoders of a pretraining-length study), each with the weight
    fingerprint its ``init.json`` records (``""`` when it predates fingerprints)."""
    study, users = StudyDir(root), {}
    for job in load_plan_json(root)["jobs"]:  # the whole plan: every pipeline sharing it
        if job_id not in job["depends"] or job["meta"].get("pretrain_epoch") is not None:
            continue
        if is_done(root, job["id"]):
            users[job["id"]] = study.run(job["id"]).init_fingerprint() or ""
    return users


def read_superseded(run: RunDir) -> dict:
    """The ``superseded.json`` of a superseded pretraining run.

    Raises:
        DataError: the record is missing or not JSON, or its fields have the wrong types.
    """
    path = run.path / "superseded.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DataError(path, "superseded-record", f"unreadable: {err}") from err
    if not isinstance(record, dict):
        raise DataError(path, "superseded-record", "not a superseded.json object")
    users = record.get("fine_tune_fingerprints", {})
    if not isinstance(users, dict) or not all(
        isinstance(ids, list) and all(isinstance(i, str) for i in ids) for ids in users.values()
    ):
        raise DataError(
            path, "superseded-record", "fine_tune_fingerprints must map fingerprints to job ids"
        )
    done = record.get("done", {})
    if not isinstance(done, dict) or not isinstance(done.get("seconds", 0.0), int | float):
        raise DataError(path, "superseded-record", "done must be an object with numeric seconds")
    return record


def _supersede(study: StudyDir, job_id: str, missing: list[Path]) -> Path | None:
    """Move a finished pretraining whose weights are gone to ``superseded/<id>.<n>`` (kept
    in git), with ``superseded.json``: when and where, which files were missing, and the
    weight fingerprints that the fine-tunes which loaded *this* run's last encoder
    recorded (finished fine-tunes not already listed by an earlier record of the job).

    The record is written into the run before it moves, and the run moves in one rename
    onto the first free number (a name in use, even by a stray file, is skipped), so a
    superseded folder always holds its record; across file systems it is copied to a
    hidden temporary name first, then renamed. Returns ``None`` when another start moved
    the run first."""
    earlier = {
        ft for old in study.superseded(job_id)
        for ids in read_superseded(old).get("fine_tune_fingerprints", {}).values() for ft in ids
    }  # fmt: skip
    fingerprints: dict[str, list[str]] = {}
    for ft, fp in last_encoder_users(study.root, job_id).items():
        if ft not in earlier:
            fingerprints.setdefault(fp, []).append(ft)
    source = study.run(job_id).path
    record = {
        "job": job_id,
        "superseded_at": time.time(),
        "host": socket.gethostname(),
        "missing": [p.name for p in missing],
        "done": done_info(study.root, job_id),
        "fine_tune_fingerprints": {fp: sorted(ids) for fp, ids in sorted(fingerprints.items())},
    }
    try:
        write_text(source / "superseded.json", json.dumps(record, indent=1) + "\n")
    except FileNotFoundError:
        return None  # another start moved it first
    study.superseded_root.mkdir(parents=True, exist_ok=True)
    moving = source
    try:
        for _ in range(1000):  # a taken name: the next number (bounded: no endless loop)
            target = study.next_superseded(job_id).path
            try:
                os.rename(moving, target)
                break
            except FileNotFoundError:
                return None  # another start moved it first
            except OSError as err:
                if err.errno == errno.EXDEV and moving == source:
                    # another file system: copy beside the target (ignored ``*.tmp``),
                    # then rename the complete copy into place
                    moving = study.superseded_root / f".{job_id}.{uuid.uuid4().hex[:8]}.tmp"
                    shutil.copytree(source, moving)
                    continue
                if err.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
                    raise
        else:
            raise OSError(f"{study.superseded_root}: no free name for {job_id}")
    finally:
        if moving != source and moving.exists():
            shutil.rmtree(moving)  # a copy that did not land
    if moving != source:
        shutil.rmtree(source)
    return target


def _resumable(run: RunDir) -> bool:
    return run.last_ckpt.exists() or run.previous_ckpt.exists()


def _move_aside(path: Path, job_id: str) -> None:
    os.rename(path, path.parent / f".{job_id}.reopened-{uuid.uuid4().hex[:8]}")


def load_plan_json(root: Path) -> dict:
    return json.loads(StudyDir(root).plan_file.read_text())


def run_dir(root: Path, job_id: str) -> Path:
    return StudyDir(root).run(job_id).path


def is_done(root: Path, job_id: str) -> bool:
    return StudyDir(root).done_marker(job_id).exists()


def done_info(root: Path, job_id: str) -> dict:
    """What the ``DONE`` marker of a finished job records (``seconds``, ``kind``, ...);
    ``{}`` for a marker without JSON."""
    try:
        info = json.loads(StudyDir(root).done_marker(job_id).read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def collapse_flag(root: Path, job_id: str) -> dict | None:
    """The collapse flag a finished pretraining wrote to its ``result.json`` (step,
    spread, threshold), or ``None``: not flagged, not finished, or not a pretraining."""
    try:
        result = json.loads(RunDir(run_dir(root, job_id)).result_file.read_text())
    except (OSError, ValueError):
        return None
    flag = result.get("collapse") if isinstance(result, dict) else None
    return flag if isinstance(flag, dict) else None


def collapsed_pretrainings(root: Path, job_ids: Iterable[str]) -> set[str]:
    """Those of ``job_ids`` that finished with their collapse check fired and that the user
    has not allowed (:func:`allow_collapse`): a fine-tune from one would start from a
    collapsed encoder. Each id's ``result.json`` is read once."""
    return {
        d
        for d in set(job_ids)
        if is_done(root, d)
        and collapse_flag(root, d)
        and not StudyDir(root).allowed_collapse_marker(d).exists()
    }


def allow_collapse(root: Path, job_id: str) -> None:
    """Record the decision to fine-tune from pretraining ``job_id`` although its collapse
    check fired (a small committed file: later runs and ``study status`` honour it)."""
    marker = StudyDir(root).allowed_collapse_marker(job_id)
    if not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        write_text(marker, json.dumps({"collapse": collapse_flag(root, job_id)}) + "\n")


def allow_collapsed(root: Path, job_ids: Iterable[str]) -> list[str]:
    """:func:`allow_collapse` for each of ``job_ids`` in :func:`collapsed_pretrainings`;
    their ids, sorted."""
    waiting = sorted(collapsed_pretrainings(root, job_ids))
    for dep in waiting:
        allow_collapse(root, dep)
    return waiting


def has_failed(root: Path, job_id: str) -> bool:
    return StudyDir(root).failed_marker(job_id).exists()


def mark_done(root: Path, job_id: str, info: dict) -> None:
    study = StudyDir(root)
    write_text(study.done_marker(job_id), json.dumps(info))
    study.failed_marker(job_id).unlink(missing_ok=True)


def mark_failed(root: Path, job_id: str, error: str) -> None:
    study = StudyDir(root)
    study.run(job_id).mkdir()
    write_text(study.failed_marker(job_id), json.dumps({"error": error, "time": time.time()}))


def append_ledger(root: Path, entry: dict) -> None:
    """Append one line to ``ledger.jsonl``: the audit trail of every job start."""
    line = json.dumps({**entry, "host": socket.gethostname()}) + "\n"
    fd = os.open(StudyDir(root).ledger, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read_ledger(root: Path) -> list[dict]:
    path = StudyDir(root).ledger
    return [json.loads(x) for x in path.read_text().splitlines() if x] if path.exists() else []


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Claim:
    """A held claim; keeps its heartbeat fresh until released."""

    path: Path
    _stop: threading.Event
    _thread: threading.Thread

    def release(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.path.unlink(missing_ok=True)


def claim_is_stale(path: Path, stale_after: float = STALE_AFTER_S) -> bool:
    """True when the claim's owner is gone or silent for longer than ``stale_after``."""
    try:
        age = time.time() - path.stat().st_mtime
        text = path.read_text()
    except OSError:
        return False  # just removed: not ours to judge
    try:
        info = json.loads(text)
    except ValueError:
        # claims are created whole (a hard link of a written file), so an unreadable one
        # was left by an older version killed mid-write, or damaged: it holds nobody
        return age > UNREADABLE_AFTER_S
    if info.get("host") == socket.gethostname() and not _pid_alive(int(info.get("pid", -1))):
        return True
    return age > stale_after


def try_claim(
    root: Path, job_id: str, stale_after: float = STALE_AFTER_S, heartbeat: float = HEARTBEAT_S
) -> Claim | None:
    """Claim ``job_id`` for this process, breaking a stale claim; ``None`` if taken."""
    claims = StudyDir(root).claims
    claims.mkdir(parents=True, exist_ok=True)
    path = StudyDir(root).claim_file(job_id)
    if path.exists() and claim_is_stale(path, stale_after):
        aside = claims / f".{job_id}.stale-{uuid.uuid4().hex[:8]}"
        with contextlib.suppress(FileNotFoundError):
            os.rename(path, aside)  # only one worker can move it: it alone breaks it
            aside.unlink()
    # written in full first, then hard-linked into place (fails if the claim exists): a
    # kill at any moment leaves either no claim or a complete one, never an empty file
    # that would look "being written" forever and block every later driver
    tmp = claims / f".{job_id}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.write_text(
        json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "start": time.time()})
    )
    try:
        os.link(tmp, path)
    except FileExistsError:
        return None
    finally:
        tmp.unlink(missing_ok=True)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(heartbeat):
            try:
                os.utime(path)
            except FileNotFoundError:
                return

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    return Claim(path, stop, thread)


def sweep_leftovers(root: Path, older_than: float = UNREADABLE_AFTER_S) -> int:
    """Delete the hidden files a killed worker can leave in ``claims/`` (a claim's
    temporary before it was linked into place, a broken claim moved aside but not yet
    deleted) once older than ``older_than`` seconds; returns how many. Readers only ever
    look at ``*.json``, so these are litter, never state."""
    claims, removed = StudyDir(root).claims, 0
    if not claims.is_dir():
        return 0
    now = time.time()
    for path in [*claims.glob(".*.tmp"), *claims.glob(".*.stale-*")]:
        with contextlib.suppress(FileNotFoundError):
            if now - path.stat().st_mtime > older_than:
                path.unlink()
                removed += 1
    return removed


def live_claims(root: Path, stale_after: float = STALE_AFTER_S) -> set[str]:
    """Ids of jobs with a non-stale claim."""
    claims = StudyDir(root).claims
    if not claims.is_dir():
        return set()
    return {p.stem for p in claims.glob("*.json") if not claim_is_stale(p, stale_after)}
