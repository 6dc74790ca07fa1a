"""A run's directory: one typed load/save per file, all written atomically.

Every run kind writes into one folder; this module is the only place that knows the
files' names. A fine-tuning run::

    config.yaml             the resolved run config
    prepare.json            the cache's preprocessing config and label set (for predict)
    split.json, budget.json patient split; the labelled slices used
    init.json               what the encoder weight import matched
    curve.csv               step, val_loss, IoU/Dice per class and mean
    best.safetensors        weights with the best validation mean IoU (+ best.json)
    checkpoints/last.ckpt   resume state (previous.ckpt: the one before)
    logs/                   per-step training metrics (CSV, TensorBoard)
    result.json             written last: the run finished (raw facts: steps, IoUs)
    metrics.json, per_case.csv, clinical.csv, overlays/   written by ``medssl evaluate``
    postprocessing.json     largest-component post-processing decided on validation

A pretraining run writes ``config.yaml``, ``split.json``, ``pool.json``, ``init.json``,
``encoder_epoch_NNN.safetensors`` (NNN = epochs trained), ``encoder_last.safetensors``,
``checkpoints/``, ``logs/`` and ``result.json``.
"""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from medssl.artifacts.atomic import atomic_write, read_json, write_json, write_text
from medssl.artifacts.split import Split
from medssl.overrides import load_yaml, save_yaml

T = TypeVar("T")

LAST_CKPT = "last.ckpt"
PREVIOUS_CKPT = "previous.ckpt"


def csv_text(rows: Sequence[Mapping[str, Any]], fields: Sequence[str] | None = None) -> str:
    """Rows as CSV text with a header (``fields``: the columns, default the first row's)."""
    buf = io.StringIO()
    if not rows and not fields:
        return ""
    writer = csv.DictWriter(buf, fieldnames=list(fields or rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def save_safetensors(path: Path, state: Mapping[str, Any], metadata: Mapping[str, str]) -> Path:
    """Write tensors ``state`` with header ``metadata`` to ``path`` atomically."""
    from safetensors.torch import save_file

    with atomic_write(path) as tmp:
        save_file(dict(state), str(tmp), metadata=dict(metadata))
    return Path(path)


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@dataclass(frozen=True)
class RunDir:
    """The directory of one run (``path`` need not exist yet)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def mkdir(self) -> RunDir:
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    # --- file names -------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.path / "config.yaml"

    @property
    def prepare_file(self) -> Path:
        return self.path / "prepare.json"

    @property
    def split_file(self) -> Path:
        return self.path / "split.json"

    @property
    def budget_file(self) -> Path:
        return self.path / "budget.json"

    @property
    def init_file(self) -> Path:
        return self.path / "init.json"

    @property
    def pool_file(self) -> Path:
        return self.path / "pool.json"

    @property
    def curve_file(self) -> Path:
        return self.path / "curve.csv"

    @property
    def best_weights(self) -> Path:
        return self.path / "best.safetensors"

    @property
    def best_info(self) -> Path:
        return self.path / "best.json"

    @property
    def result_file(self) -> Path:
        return self.path / "result.json"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.json"

    @property
    def per_case_file(self) -> Path:
        return self.path / "per_case.csv"

    @property
    def clinical_file(self) -> Path:
        return self.path / "clinical.csv"

    @property
    def postprocessing_file(self) -> Path:
        return self.path / "postprocessing.json"

    @property
    def overlays(self) -> Path:
        return self.path / "overlays"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last_ckpt(self) -> Path:
        return self.checkpoints / LAST_CKPT

    @property
    def previous_ckpt(self) -> Path:
        return self.checkpoints / PREVIOUS_CKPT

    @property
    def logs(self) -> Path:
        """Lightning loggers' folder, relative name ``logs`` under :attr:`path`."""
        return self.path / "logs"

    @property
    def step_log(self) -> Path:
        """The CSV logger's per-step metrics."""
        return self.logs / "metrics.csv"

    def encoder_epoch(self, epoch: int) -> Path:
        """The encoder exported after ``epoch`` epochs of pretraining (0: before)."""
        return self.path / f"encoder_epoch_{epoch:03d}.safetensors"

    @property
    def encoder_last(self) -> Path:
        return self.path / "encoder_last.safetensors"

    def decoder_epoch(self, epoch: int) -> Path:
        """The U-Net decoder exported after ``epoch`` epochs (methods that train one)."""
        return self.path / f"decoder_epoch_{epoch:03d}.safetensors"

    @property
    def decoder_last(self) -> Path:
        return self.path / "decoder_last.safetensors"

    def encoders(self) -> list[Path]:
        """The per-epoch encoders present, in epoch order."""
        return sorted(self.path.glob("encoder_epoch_*.safetensors"))

    # --- state -------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        """``result.json`` is written last: its presence means the run finished."""
        return self.result_file.is_file()

    @property
    def started(self) -> bool:
        return self.finished or self.last_ckpt.exists() or self.previous_ckpt.exists()

    def drop_resume_state(self) -> int:
        """Delete ``checkpoints/`` (the resume state) of a finished run; returns the bytes
        freed. Its weights (``best.safetensors``, the encoders) and every result stay.
        Refused for an unfinished run, which still needs it to resume."""
        if not self.finished:
            raise RuntimeError(f"{self.path}: not finished; its checkpoints are needed to resume")
        if not self.checkpoints.is_dir():
            return 0
        freed = sum(f.stat().st_size for f in self.checkpoints.rglob("*") if f.is_file())
        shutil.rmtree(self.checkpoints)
        return freed

    # --- config -------------------------------------------------------------------
    def save_config(self, cfg: Any) -> None:
        with atomic_write(self.config_file) as tmp:
            save_yaml(cfg, tmp)

    def load_config(self, cls: type[T]) -> T:
        return load_yaml(cls, self.config_file)

    # --- JSON files --------------------------------------------------------------
    def save_prepare(self, info: Mapping[str, Any]) -> None:
        write_json(self.prepare_file, dict(info))

    def load_prepare(self) -> dict:
        return read_json(self.prepare_file)

    def save_split(self, split: Split) -> None:
        split.save(self.split_file)

    def load_split(self) -> Split:
        return Split.load(self.split_file)

    def save_budget(self, info: Mapping[str, Any]) -> None:
        write_json(self.budget_file, dict(info), indent=0)

    def load_budget(self) -> dict:
        return read_json(self.budget_file)

    def save_init(self, report: Mapping[str, Any]) -> None:
        write_json(self.init_file, dict(report))

    def load_init(self) -> dict:
        return read_json(self.init_file)

    def init_fingerprint(self) -> str | None:
        """The weight fingerprint ``init.json`` records (``None`` when the run has no
        readable ``init.json`` or predates fingerprints)."""
        try:
            return self.load_init().get("fingerprint")
        except (OSError, ValueError):
            return None

    def save_pool(self, info: Mapping[str, Any]) -> None:
        write_json(self.pool_file, dict(info), indent=None)

    def load_pool(self) -> dict:
        return read_json(self.pool_file)

    def save_result(self, result: Mapping[str, Any]) -> None:
        write_json(self.result_file, dict(result))

    def load_result(self) -> dict:
        return read_json(self.result_file)

    def save_metrics(self, metrics: Mapping[str, Any]) -> None:
        write_json(self.metrics_file, dict(metrics))

    def load_metrics(self) -> dict:
        return read_json(self.metrics_file)

    def save_best_info(self, row: Mapping[str, Any]) -> None:
        write_json(self.best_info, dict(row))

    def save_best(
        self, state: Mapping[str, Any], metadata: Mapping[str, str], row: Mapping[str, Any]
    ) -> None:
        """Write the best model's tensors (safetensors, with ``metadata``) and then the
        curve point it was chosen at (``best.json``), each atomically."""
        save_safetensors(self.best_weights, state, metadata)
        self.save_best_info(row)

    def load_best_info(self) -> dict:
        return read_json(self.best_info)

    # --- tables --------------------------------------------------------------------
    def curve_rows(self) -> list[dict[str, str]]:
        """``curve.csv`` as rows of strings (empty when absent)."""
        return read_csv_rows(self.curve_file) if self.curve_file.exists() else []

    def read_curve(self) -> dict[str, np.ndarray]:
        """``curve.csv`` as columns of floats (empty when absent)."""
        rows = self.curve_rows()
        return {k: np.array([float(r[k]) for r in rows]) for k in (rows[0] if rows else {})}

    def append_curve(self, row: Mapping[str, Any]) -> None:
        """Add one learning-curve point (the file is rewritten atomically)."""
        rows: list[Mapping[str, Any]] = [*self.curve_rows(), dict(row)]
        write_text(self.curve_file, csv_text(rows, list(row)))

    def truncate_curve(self, last_step: int | None) -> None:
        """Keep the curve points up to ``last_step`` (``None``: drop the curve), for a
        resumed run that recomputes the later ones."""
        rows = [] if last_step is None else self.curve_rows()
        kept = [r for r in rows if int(float(r["step"])) <= last_step] if rows else []
        if kept:
            write_text(self.curve_file, csv_text(kept))
        else:
            self.curve_file.unlink(missing_ok=True)

    def write_table(self, path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
        """Write ``rows`` as CSV to one of this run's table files (e.g.
        :attr:`per_case_file`); the columns are the union of the rows' keys, in order."""
        rows = [dict(r) for r in rows]
        fields: dict[str, None] = {}
        for r in rows:
            fields.update(dict.fromkeys(r))
        write_text(path, csv_text(rows, list(fields)))
