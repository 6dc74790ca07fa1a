"""A study's folder: the plan, each job's run directory and its state markers.

Layout::

    plan.json              jobs (id, kind, meta, depends) and skipped pipelines
    runs/<id>/             each job's run directory (:class:`~medssl.artifacts.RunDir`)
    runs/<id>/DONE         written last, atomically: the run and its evaluation finished
    runs/<id>/failed.json  the last failure (traceback); removed when the run succeeds
    claims/<id>.json       who runs the job now: host, pid, start; its mtime is a heartbeat
    allowed-collapse/<id>  the user's decision to fine-tune from pretraining <id> although
                           its collapse check fired (``study run --allow-collapsed``)
    ledger.jsonl           one line per job start (audit trail: no cell runs twice)
    results.{parquet,csv}  the study table (one row per finished fine-tune and cell)
    curves.{parquet,csv}   every learning curve in long format
    pretraining.{parquet,csv}  every pretraining run's per-epoch loss and collapse monitor
    superseded/<id>.<n>/   the small files of a finished pretraining whose weights were gone
                           when a pending fine-tune needed them (a study continued on
                           another machine): the job ran again in ``runs/<id>``, and this
                           record (with ``superseded.json``: when, where, and the weight
                           fingerprints its finished fine-tunes loaded) stays committed
    .gitignore             keeps weights, checkpoints, logs and claims out of git: a
                           committed study folder holds each run's small files only
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medssl.artifacts.rundir import RunDir

#: what a committed study folder leaves out (``.gitignore``): weights, resume state,
#: per-step logs, overlays, live claims; the small files (config, budget, split, curve,
#: result, metrics, markers) stay, and ``medssl study run`` skips the runs they record
STUDY_GITIGNORE = (
    "*.safetensors",
    "*.ckpt",
    "*.tmp",
    "runs/*/checkpoints/",
    "runs/*/logs/",
    "runs/*/overlays/",
    "runs/.*",
    "superseded/*/checkpoints/",
    "superseded/*/logs/",
    "claims/",
)


@dataclass(frozen=True)
class StudyDir:
    """The folder of one study (``root`` need not exist yet)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def plan_file(self) -> Path:
        return self.root / "plan.json"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.jsonl"

    @property
    def gitignore(self) -> Path:
        return self.root / ".gitignore"

    @property
    def claims(self) -> Path:
        return self.root / "claims"

    def claim_file(self, job_id: str) -> Path:
        return self.claims / f"{job_id}.json"

    def run(self, job_id: str) -> RunDir:
        return RunDir(self.root / "runs" / job_id)

    def done_marker(self, job_id: str) -> Path:
        return self.run(job_id).path / "DONE"

    def failed_marker(self, job_id: str) -> Path:
        return self.run(job_id).path / "failed.json"

    @property
    def superseded_root(self) -> Path:
        return self.root / "superseded"

    def _numbered(self, job_id: str) -> list[tuple[int, Path]]:
        """Every entry ``superseded/<id>.<n>`` (even a stray file), by ``n``."""
        if not self.superseded_root.is_dir():
            return []
        found = ((p.name.rsplit(".", 1)[-1], p) for p in self.superseded_root.glob(f"{job_id}.*"))
        return sorted((int(n), p) for n, p in found if n.isdigit())

    def superseded(self, job_id: str) -> list[RunDir]:
        """The superseded records of ``job_id``, oldest first (``superseded/<id>.<n>``)."""
        return [RunDir(p) for _, p in self._numbered(job_id) if p.is_dir()]

    def next_superseded(self, job_id: str) -> RunDir:
        """Where the next superseded record of ``job_id`` goes (after any entry there)."""
        last = max((n for n, _ in self._numbered(job_id)), default=0)
        return RunDir(self.superseded_root / f"{job_id}.{last + 1}")

    def allowed_collapse_marker(self, job_id: str) -> Path:
        return self.root / "allowed-collapse" / job_id

    def table(self, name: str, ext: str = "parquet") -> Path:
        """``results``, ``curves`` or ``pretraining``, as ``parquet`` or ``csv``."""
        if name not in ("results", "curves", "pretraining"):
            raise ValueError(f"unknown study table {name!r}")
        return self.root / f"{name}.{ext}"
