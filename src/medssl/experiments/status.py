"""Where a study stands: done / running / failed / remaining, and an ETA."""

from __future__ import annotations

import json
from dataclasses import dataclass
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

    def lines(self) -> list[str]:
        eta = "unknown" if self.eta_s is None else f"{self.eta_s / 60:.1f} min (one worker)"
        out = [
            f"{self.done}/{self.total} done, {self.running} running, {self.failed} failed, "
            f"{self.remaining} remaining; ETA {eta}"
        ]
        out += [f"skipped pipeline {k}: {v}" for k, v in self.skipped.items()]
        return out


def study_status(root: str | Path) -> StudyStatus:
    """Read a study folder (its ``plan.json``, markers and claims)."""
    root = Path(root)
    plan = store.load_plan_json(root)
    live = store.live_claims(root)
    done = running = failed = 0
    durations: dict[str, list[float]] = {}
    todo_kinds: list[str] = []
    for job in plan["jobs"]:
        jid, kind = job["id"], job["kind"]
        if store.is_done(root, jid):
            done += 1
            info = json.loads(StudyDir(root).done_marker(jid).read_text())
            if "seconds" in info:
                durations.setdefault(kind, []).append(float(info["seconds"]))
            continue
        todo_kinds.append(kind)
        if jid in live:
            running += 1
        elif store.has_failed(root, jid):
            failed += 1
    remaining = len(todo_kinds) - running - failed
    eta = None
    if durations and all(k in durations for k in set(todo_kinds)):
        eta = float(sum(np.median(durations[k]) for k in todo_kinds))
    return StudyStatus(
        len(plan["jobs"]),
        done,
        running,
        failed,
        remaining,
        eta if todo_kinds else 0.0,
        plan.get("skipped", {}),
    )
