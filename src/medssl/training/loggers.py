"""The run's loggers: a CSV step log that survives a resume, and TensorBoard.

Lightning's ``CSVLogger`` deletes an existing ``metrics.csv`` when its writer starts, so a
run killed and resumed kept only the steps logged after its last resume: a pretraining's
loss curve (``result.json``'s ``loss_per_epoch``, the study's figure P) lost every epoch
before the kill. Here the writer keeps the file and appends, every logged row is written
at once (nothing sits in a buffer for a kill to lose), and :func:`trim_step_log` first
drops the rows of the steps the resumed run replays, so the log of a killed and resumed
run holds the same steps as an uninterrupted one, each once.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from medssl.artifacts.atomic import write_text
from medssl.artifacts.rundir import RunDir


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer, minus the deletion of an existing ``metrics.csv``: the
    file's columns are taken as known, so new rows are appended under them (a row with
    a new column rewrites the file with the wider header, old rows kept)."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as fh:
                self.metrics_keys = next(csv.reader(fh), [])


class AppendingCSVLogger(CSVLogger):
    """``CSVLogger`` that appends to the step log of a resumed run (see the module)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("flush_logs_every_n_steps", 1)
        super().__init__(*args, **kwargs)

    @property
    @rank_zero_experiment
    def experiment(self) -> _AppendingWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


def trim_step_log(path: Path, resume_step: int | None) -> int:
    """Prepare the step log for a run resuming at global step ``resume_step`` (``None``:
    starting afresh, the log goes). A row's ``step`` is the index of the batch that
    logged it, so rows with ``step >= resume_step`` are of batches the resumed run trains
    again and are dropped. Returns how many rows were dropped."""
    if not path.is_file():
        return 0
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        header, rows = reader.fieldnames or [], list(reader)
    if resume_step is None:
        path.unlink()
        return len(rows)
    kept = [r for r in rows if not r.get("step") or int(float(r["step"])) < resume_step]
    if len(kept) < len(rows):
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=header, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(kept)
        write_text(path, out.getvalue())
    return len(rows) - len(kept)


def loggers(run: RunDir) -> list[Logger]:
    """CSV (``logs/metrics.csv``, appended across resumes) and TensorBoard loggers
    writing to the run's ``logs`` folder."""
    name = run.logs.name
    return [
        AppendingCSVLogger(run.path, name=name, version=""),
        TensorBoardLogger(run.path, name=name, version="", default_hp_metric=False),
    ]
