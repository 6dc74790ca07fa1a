"""Where a study stands: done / running / failed / remaining, and an ETA."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medssl.artifacts.study import StudyDir
from medssl.experiments import store


@dataclass(frozen=True)
class StudyStatus:
    """Counts of a study folder's jobs and the estimated time to finish (seconds)."""

    total: int
    done: int
    running: int
    failed: int
    remaining: int
    eta_s: float | None
    skipped: dict[str, str]
    #: jobs still to do whose kind no finished job has timed yet, per kind (not in ``eta_s``)
    untimed: dict[str, int] = field(default_factory=dict)
    #: jobs that wait on a pretraining whose collapse check fired (not in ``remaining``
    #: nor ``eta_s``), per pretraining job id
    blocked: dict[str, int] = field(default_factory=dict)
    #: why, per such pretraining: its pipeline and the collapse flag
    collapsed: dict[str, str] = field(default_factory=dict)
    #: (done, total) jobs per pipeline, in plan order (a pretraining counts for its own)
    per_pipeline: dict[str, tuple[int, int]] = field(default_factory=dict)

    def lines(self) -> list[str]:
        eta = (
            "unknown"
            if self.eta_s is None
            else f"{self.eta_s / 60:.1f} min of job time (one job after another)"
        )
        if self.eta_s is not None and self.untimed:
            jobs = ", ".join(f"{n} {kind}" for kind, n in sorted(self.untimed.items()))
            eta += f" + {jobs} job(s) not timed yet"
        out = [
            f"{self.done}/{self.total} done, {self.running} running, {self.failed} failed, "
            f"{self.remaining} remaining; ETA {eta}"
        ]
        if len(self.per_pipeline) > 1:
            parts = (f"{name} {d}/{n}" for name, (d, n) in self.per_pipeline.items())
            out.append("by pipeline (done/total): " + ", ".join(parts))
        out += [f"skipped pipeline {k}: {v}" for k, v in self.skipped.items()]
        out += [
            f"blocked: {n} job(s) wait on pretraining {job} ({self.collapsed.get(job, '?')}); "
            "to fine-tune from it anyway: medssl study run ... --allow-collapsed"
            for job, n in self.blocked.items()
        ]
        return out


def study_status(root: str | Path) -> StudyStatus:
    """Read a study folder (its ``plan.json``, markers and claims)."""
    root = Path(root)
    plan = store.load_plan_json(root)
    live = store.live_claims(root)
    done = running = failed = 0
    durations: dict[str, list[float]] = {}
    todo_kinds: list[str] = []
    blocked: Counter[str] = Counter()
    deps = (d for job in plan["jobs"] for d in job["depends"])
    waiting = store.collapsed_pretrainings(root, deps)
    per_pipeline: dict[str, list[int]] = {}
    for job in plan["jobs"]:
        jid, kind = job["id"], job["kind"]
        counts = per_pipeline.setdefault(job["meta"].get("pipeline", "?"), [0, 0])
        counts[1] += 1
        if store.is_done(root, jid):
            done += 1
            counts[0] += 1
            info = json.loads(StudyDir(root).done_marker(jid).read_text())
            if "seconds" in info:
                durations.setdefault(kind, []).append(float(info["seconds"]))
            continue
        if jid in live:
            running += 1
        elif waits_on := next((d for d in job["depends"] if d in waiting), None):
            blocked[waits_on] += 1  # failed or not: it runs again only once allowed
            continue
        elif store.has_failed(root, jid):
            failed += 1
        todo_kinds.append(kind)
    remaining = len(todo_kinds) - running - failed
    pipelines = {job["id"]: job["meta"].get("pipeline", "?") for job in plan["jobs"]}
    eta, untimed = estimate(durations, todo_kinds)
    return StudyStatus(
        len(plan["jobs"]),
        done,
        running,
        failed,
        remaining,
        eta,
        plan.get("skipped", {}),
        untimed,
        dict(blocked),
        {job: _collapse_text(pipelines[job], store.collapse_flag(root, job)) for job in blocked},
        {name: (d, n) for name, (d, n) in per_pipeline.items()},
    )


def _collapse_text(pipeline: str, flag: dict | None) -> str:
    flag = flag or {}
    return (
        f"{pipeline}: collapse check fired at step {flag.get('step', '?')}, projection spread "
        f"{flag.get('online_std', float('nan')):.2g} < {flag.get('threshold', float('nan')):.2g}"
    )


def estimate(
    durations: dict[str, list[float]], todo_kinds: list[str]
) -> tuple[float | None, dict[str, int]]:
    """Seconds the jobs still to do would take one after another (the median duration of
    each kind's finished jobs), and how many of them are of a kind not timed yet.

    ``None`` when no job still to do is of a timed kind (0.0 when nothing is left).
    """
    if not todo_kinds:
        return 0.0, {}
    timed = [k for k in todo_kinds if k in durations]
    untimed = dict(Counter(k for k in todo_kinds if k not in durations))
    if not timed:
        return None, untimed
    return float(sum(np.median(durations[k]) for k in timed)), untimed
