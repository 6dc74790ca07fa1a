"""The study table's schema: one :class:`StudyRow` per finished fine-tune and study
cell, one :class:`CurveRow` per validation of its learning curve.

``medssl study collect`` writes them as ``results.{parquet,csv}`` and
``curves.{parquet,csv}`` in the study folder; ``medssl report`` and the figures read
them by the column names defined here. Per-structure columns are named from the
dataset's label set (:func:`label_columns`): ``test_dice_3d_<name>`` for each
foreground label, so a dataset with labels ``Anterior``/``Posterior`` gets
``test_dice_3d_Anterior`` and no cardiac names.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields

from medssl.artifacts.labels import LabelSet

#: Per-structure test metrics in the results table, each ``test_<metric>_<name>``;
#: ``pp_*``: after the run's largest-component post-processing (NaN when the run was
#: evaluated without it).
PER_LABEL_METRICS = ("slice_iou", "dice_3d", "hd95", "pp_dice_3d", "pp_hd95")

#: Per-slice metrics of the study's own code, present when the evaluation wrote them.
STUDY_METRICS = ("paper_iou", "paper_jaccard_loss")

#: The order the results table is sorted in.
SORT_KEYS = ("study", "pipeline", "budget", "seed", "pretrain_epoch")


def label_column(metric: str, name: str) -> str:
    """The results column of ``metric`` (one of :data:`PER_LABEL_METRICS`) for label ``name``."""
    if metric not in PER_LABEL_METRICS:
        raise ValueError(f"unknown per-label metric {metric!r}; expected {PER_LABEL_METRICS}")
    return f"test_{metric}_{name}"


def clinical_column(index: str) -> str:
    """The results column of the mean absolute error of clinical index ``index``."""
    return f"clinical_mae_{index}"


def label_columns(labels: LabelSet) -> tuple[str, ...]:
    """Every per-structure column for the foreground labels of ``labels``."""
    return tuple(
        label_column(m, name) for name in labels.foreground_names for m in PER_LABEL_METRICS
    )


@dataclass(frozen=True)
class StudyRow:
    """One row of ``results``: the cell (pipeline, budget, seed, pretraining epoch), the
    run's raw facts, the curve summaries derived from its curve, and its test metrics.

    ``per_label`` is ``{name: {metric: value}}`` over :data:`PER_LABEL_METRICS`, flattened
    into :func:`label_column` columns; ``paper_iou``/``paper_jaccard_loss`` are columns only
    when known. ``converged``: whether the last 20 % of the validation curve moved by less
    than 0.01 IoU (:func:`medssl.analysis.curves.curve_settled`; ``None``: too few
    validations to tell); an optional column (tables collected before it lack it).
    ``wall_s``: the job's wall time (training and evaluation) from its ``DONE`` marker.
    ``init_fingerprint``: the content hash of the weights the run started from
    (:func:`medssl.models.weights.weights_fingerprint`; empty for random init, ``None``
    for runs written before it was recorded): fine-tunes of one pipeline that differ in
    it started from different pretraining runs (e.g. one re-run on another machine).
    ``device``: what ran the job (:func:`medssl.experiments.runner.machine`, from its
    ``DONE`` marker; ``None`` where the marker predates it).
    ``clinical`` is ``{index: mean absolute error}`` of the clinical indices (LV/RV EDV,
    ESV, EF, myocardial mass) against the reference, as :func:`clinical_column` columns,
    when the evaluation computed them (spacing known, a cardiac label set).
    """

    run_id: str
    study: str
    pipeline: str
    budget_kind: str
    budget: int
    labelled_slices: int
    seed: int
    pretrain_epoch: float
    steps: int
    best_val_iou: float
    final_val_iou: float
    steps_to_95: float
    curve_auc: float
    test_slice_iou_mean: float
    test_jaccard_loss: float
    test_dice_3d_mean: float
    distance_units: str
    run_dir: str
    paper_iou: float | None = None
    paper_jaccard_loss: float | None = None
    converged: bool | None = None
    wall_s: float | None = None
    init_fingerprint: str | None = None
    device: str | None = None
    per_label: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    clinical: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        row = {k: v for k, v in asdict(self).items() if k not in ("per_label", "clinical")}
        for key in STUDY_METRICS:
            if row[key] is None:
                del row[key]
        for name, values in self.per_label.items():
            for metric in PER_LABEL_METRICS:
                row[label_column(metric, name)] = float(values.get(metric, math.nan))
        for index, value in self.clinical.items():
            row[clinical_column(index)] = float(value)
        return row


#: The columns every results table has (per-label and study-metric columns come on top).
RESULT_COLUMNS = tuple(
    f.name
    for f in fields(StudyRow)
    if f.name
    not in (
        "per_label",
        "clinical",
        "converged",
        "wall_s",
        "init_fingerprint",
        "device",
    )
    and f.name not in STUDY_METRICS
)


@dataclass(frozen=True)
class CurveRow:
    """One validation of a fine-tune's learning curve in ``curves`` (long format)."""

    run_id: str
    study: str
    pipeline: str
    budget: int
    seed: int
    pretrain_epoch: float
    step: int
    val_loss: float
    val_iou: float

    def to_dict(self) -> dict:
        return asdict(self)


#: The columns of the curves table.
CURVE_COLUMNS = tuple(f.name for f in fields(CurveRow))


def missing_columns(columns: Iterable[str], required: Iterable[str]) -> list[str]:
    """The ``required`` columns absent from ``columns``, in order."""
    have = set(columns)
    return [c for c in required if c not in have]


def check_results(columns: Iterable[str], where: str) -> None:
    """Raise ``ValueError`` (one line, naming ``where``) when a results table lacks a
    column of :data:`RESULT_COLUMNS`."""
    missing = missing_columns(columns, RESULT_COLUMNS)
    if missing:
        raise ValueError(f"{where}: not a medssl results table (missing {', '.join(missing)})")


def structure_names(columns: Iterable[str]) -> tuple[str, ...]:
    """The label names a results table has per-structure columns for (from its
    ``test_dice_3d_<name>`` columns, in column order)."""
    prefix = label_column("dice_3d", "")
    return tuple(c[len(prefix) :] for c in columns if c.startswith(prefix) and c != f"{prefix}mean")
