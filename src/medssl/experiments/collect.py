"""Collect a study's finished fine-tunes into one results table and one curves table."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from medssl.analysis.curves import curve_auc, curve_settled, steps_to_fraction
from medssl.artifacts.atomic import atomic_write, write_text
from medssl.artifacts.labels import ACDC_LABELS, LabelSet
from medssl.artifacts.rundir import RunDir, read_csv_rows
from medssl.artifacts.steplog import epoch_means
from medssl.artifacts.study import StudyDir
from medssl.artifacts.table import (
    CURVE_COLUMNS,
    RESULT_COLUMNS,
    SORT_KEYS,
    STUDY_METRICS,
    CurveRow,
    StudyRow,
)
from medssl.experiments import store


def _cells(job: dict) -> list[dict]:
    """The study cells a job stands for: its meta, then any ``also`` cells (a run shared by
    two parts of a study, e.g. epoch 0 of the length study and its base pipeline)."""
    meta = {k: v for k, v in job["meta"].items() if k != "also"}
    return [meta, *job["meta"].get("also", [])]


def _budget(meta: dict, result: dict) -> int:
    """The cell's budget; ``None`` (every labelled slice) is reported as that count."""
    return int(result["labelled_slices"] if meta.get("budget") is None else meta["budget"])


def _study_metric(metrics: dict, result: dict, key: str) -> float:
    """``key`` from metrics.json (or result.json): a number or a ``{"mean": ...}`` summary."""
    for source in (metrics, result):
        value = source.get(key)
        if isinstance(value, dict):
            value = value.get("mean")
        if isinstance(value, int | float):
            return float(value)
    return math.nan


def _label_set(run: RunDir) -> LabelSet:
    """The run's label set (``prepare.json``); ACDC's for runs that predate it."""
    if not run.prepare_file.is_file():
        return ACDC_LABELS
    prep = run.load_prepare()
    if "label_set" in prep:
        return LabelSet.from_dict(prep["label_set"])
    return LabelSet.from_names(prep.get("label_names") or ACDC_LABELS.names)


def _curve_summary(curve: list[dict[str, str]]) -> dict[str, float | bool | None]:
    """Summaries derived from a run's validation curve (``curve.csv`` rows; training
    writes the curve only)."""
    s = [float(r["step"]) for r in curve]
    v = [float(r["slice_iou/mean"]) for r in curve]
    return {
        "steps_to_95": steps_to_fraction(s, v, 0.95),
        "curve_auc": curve_auc(s, v),
        "converged": curve_settled(s, v),
    }


@dataclass(frozen=True)
class _RunFiles:
    """What collection reads of one finished fine-tune, read once for all its cells."""

    run: RunDir
    result: dict
    metrics: dict
    curve: list[dict[str, str]]
    labels: LabelSet
    wall_s: float | None = None
    init_fingerprint: str | None = None
    device: str | None = None

    @classmethod
    def read(cls, run: RunDir, done: dict | None = None) -> _RunFiles:
        seconds = (done or {}).get("seconds")
        return cls(
            run,
            run.load_result(),
            run.load_metrics(),
            run.curve_rows(),
            _label_set(run),
            None if seconds is None else float(seconds),
            run.init_fingerprint(),
            (done or {}).get("device"),
        )


def _phase_mean(by_phase: dict, structure: str, key: str) -> float:
    """Mean of ``key`` (e.g. ``hd95``) of ``structure`` over the phases of ``by_phase``."""
    values = [t[structure][key] for t in by_phase.values() if structure in t]
    return float(sum(values) / len(values)) if values else math.nan


def _row(job: dict, files: _RunFiles, meta: dict) -> StudyRow:
    result, metrics = files.result, files.metrics
    summary = _curve_summary(files.curve)
    epoch = meta.get("pretrain_epoch")
    known = {k: _study_metric(metrics, result, k) for k in STUDY_METRICS}
    pp = metrics.get("postprocessed") or {}
    per_label = {}
    for s in files.labels.foreground_names:
        per_label[s] = {
            "slice_iou": metrics["slice_iou"].get(s, math.nan),
            "dice_3d": metrics["dice_3d"].get(s, math.nan),
            "hd95": _phase_mean(metrics["by_phase"], s, "hd95"),
            "pp_dice_3d": pp.get("dice_3d", {}).get(s, math.nan),
            "pp_hd95": _phase_mean(pp.get("by_phase", {}), s, "hd95"),
        }
    return StudyRow(
        run_id=job["id"],
        study=meta.get("study", "main"),
        pipeline=meta["pipeline"],
        budget_kind=meta.get("budget_kind", "slices"),
        budget=_budget(meta, result),
        labelled_slices=int(result["labelled_slices"]),
        seed=int(meta["seed"]),
        pretrain_epoch=math.nan if epoch is None else float(epoch),
        steps=int(result["steps"]),
        best_val_iou=float(result["best_val_iou"]),
        final_val_iou=float(result["final_val_iou"]),
        steps_to_95=float(summary["steps_to_95"]),
        curve_auc=float(summary["curve_auc"]),
        converged=summary["converged"],
        wall_s=files.wall_s,
        init_fingerprint=files.init_fingerprint,
        device=files.device,
        test_slice_iou_mean=metrics["slice_iou"]["mean"],
        test_jaccard_loss=metrics["jaccard_loss"],
        test_dice_3d_mean=metrics["dice_3d"]["mean"],
        distance_units=metrics["distance_units"],
        run_dir=f"runs/{job['id']}",  # relative to the study folder: same on every clone
        per_label=per_label,
        clinical={k: float(v) for k, v in metrics.get("clinical_mean_abs_error", {}).items()},
        **{k: v for k, v in known.items() if k in metrics or k in result},
    )


def _curve_rows(job: dict, curve: list[dict[str, str]], meta: dict, budget: int) -> list[CurveRow]:
    epoch = meta.get("pretrain_epoch")
    return [
        CurveRow(
            run_id=job["id"],
            study=meta.get("study", "main"),
            pipeline=meta["pipeline"],
            budget=budget,
            seed=int(meta["seed"]),
            pretrain_epoch=math.nan if epoch is None else float(epoch),
            step=int(r["step"]),
            val_loss=float(r["val_loss"]),
            val_iou=float(r["slice_iou/mean"]),
        )
        for r in curve
    ]


#: Columns of the ``pretraining`` table: one row per finished pretraining run and epoch.
PRETRAINING_COLUMNS = (
    "run_id",
    "pipeline",
    "method",
    "init",
    "epoch",
    "steps",
    "loss",
    "online_std",
    "collapsed",
    "wall_s",
    "device",
    "superseded",
    "encoder_fingerprint",
)


def _pretraining_rows(
    job: dict, run: RunDir, done: dict, *, run_id: str, superseded: bool, fingerprint: str
) -> list[dict]:
    """Per-epoch loss of one finished pretraining: ``result.json``'s ``loss_per_epoch``,
    or (runs that predate it) the step log when it is still there; a run with neither is
    one row with NaN epoch and loss (its wall time still counts)."""
    result = run.load_result()
    curve = result.get("loss_per_epoch")
    if not curve and run.step_log.is_file():
        curve = epoch_means(read_csv_rows(run.step_log))
    cfg = result.get("config", {})
    fixed = {
        "run_id": run_id,
        "pipeline": job["meta"].get("pipeline", ""),
        "method": result.get("method", cfg.get("method", "byol")),
        "init": str(cfg.get("init", "")),
        "collapsed": result.get("collapse") is not None,
        "wall_s": float(done["seconds"]) if "seconds" in done else math.nan,
        "device": done.get("device"),
        "superseded": superseded,
        "encoder_fingerprint": result.get("encoder_fingerprint") or fingerprint,
    }
    # a run without a curve (logged before curves were kept) still has its wall time
    curve = curve or [{"epoch": math.nan, "steps": float(result.get("steps", math.nan))}]
    return [
        {**fixed, **{k: r.get(k, math.nan) for k in ("epoch", "steps", "loss", "online_std")}}
        for r in curve
    ]


def _only(fingerprints: set[str]) -> str:
    """The one fingerprint of a set (``""`` when it has none or several)."""
    known = fingerprints - {""}
    return known.pop() if len(known) == 1 else ""


def collect_pretraining(root: str | Path) -> pd.DataFrame:
    """The per-epoch loss curves of a study's finished pretraining runs, written as
    ``pretraining.{parquet,csv}`` into the study folder (empty when it has none).

    Superseded runs (``superseded/<id>.<n>``: finished, then run again because their
    weights were gone) are rows too, with ``run_id`` ``<id>.<n>`` and ``superseded``
    true. ``encoder_fingerprint`` ties a pretraining run to the fine-tunes that loaded
    its weights: the run's own record, or for runs that predate it the one fingerprint
    their finished fine-tunes loaded (``superseded.json`` for a superseded run)."""
    root = Path(root)
    study = StudyDir(root)
    rows = []
    for job in store.load_plan_json(root)["jobs"]:
        if job["kind"] != "pretrain":
            continue
        older = study.superseded(job["id"])
        for n, old in enumerate(older, start=1):  # oldest first, then the current run
            record = store.read_superseded(old)
            fingerprint = _only(set(record.get("fine_tune_fingerprints", {})))
            rows += [
                {**r, "_job": job["id"], "_n": n}
                for r in _pretraining_rows(
                    job, old, record.get("done", {}), run_id=old.path.name, superseded=True,
                    fingerprint=fingerprint,
                )
            ]  # fmt: skip
        if store.is_done(root, job["id"]):
            run = RunDir(store.run_dir(root, job["id"]))
            # a run that predates encoder_fingerprint: what its fine-tunes loaded (only
            # when no earlier run of the job exists, else they may have loaded that one)
            loaded = "" if older else _only(set(store.last_encoder_users(root, job["id"]).values()))
            rows += [
                {**r, "_job": job["id"], "_n": len(older) + 1}
                for r in _pretraining_rows(
                    job, run, store.done_info(root, job["id"]), run_id=job["id"],
                    superseded=False, fingerprint=loaded,
                )
            ]  # fmt: skip
    df = pd.DataFrame(rows, columns=[*PRETRAINING_COLUMNS, "_job", "_n"])
    df = df.sort_values(["pipeline", "_job", "_n", "epoch"], ignore_index=True)
    df = df.drop(columns=["_job", "_n"])
    _write_table(root, "pretraining", df)
    return df


def _write_table(root: Path, name: str, df: pd.DataFrame) -> None:
    study = StudyDir(root)
    with atomic_write(study.table(name, "parquet")) as tmp:
        df.to_parquet(tmp, index=False)
    write_text(study.table(name, "csv"), df.to_csv(index=False))


def collect(root: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Build ``results`` (one row per finished fine-tune and study cell it stands for) and
    ``curves`` (long format) and write them as Parquet and CSV into the study folder, with
    the pretraining runs' loss curves (:func:`collect_pretraining`).

    ``paper_iou`` and ``paper_jaccard_loss`` columns are present when some run's
    evaluation wrote them (NaN for runs evaluated before they existed)."""
    root = Path(root)
    plan = store.load_plan_json(root)
    rows, curves = [], []
    for job in plan["jobs"]:
        if job["kind"] != "finetune" or not store.is_done(root, job["id"]):
            continue
        files = _RunFiles.read(
            RunDir(store.run_dir(root, job["id"])), store.done_info(root, job["id"])
        )
        for meta in _cells(job):
            row = _row(job, files, meta)
            rows.append(row.to_dict())
            curves.extend(c.to_dict() for c in _curve_rows(job, files.curve, meta, row.budget))
    results = pd.DataFrame(rows, columns=None if rows else list(RESULT_COLUMNS))
    curve_df = pd.DataFrame(curves, columns=list(CURVE_COLUMNS))
    if not results.empty:
        results = results.sort_values(list(SORT_KEYS), ignore_index=True)
    for name, df in (("results", results), ("curves", curve_df)):
        _write_table(root, name, df)
    collect_pretraining(root)
    return results, curve_df
