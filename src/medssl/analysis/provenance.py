"""Where a study's results came from, as report text: the measured compute and the
devices of its jobs, the pretraining runs behind each pipeline's fine-tunes, and the
pretraining section (figure P and each run's loss table)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from medssl.analysis import run_figures
from medssl.analysis.numbers import run_name
from medssl.analysis.render import Section


def compute_text(results: pd.DataFrame, pretraining: pd.DataFrame | None) -> str | None:
    """The measured wall time of the study's jobs (their ``DONE`` markers), or ``None``."""
    parts = []
    if "wall_s" in results:
        runs = results.drop_duplicates("run_id")["wall_s"].dropna()
        if len(runs):
            parts.append(
                f"{len(runs)} fine-tunes (training and evaluation) took {runs.sum() / 3600:.2f} h "
                f"(median {runs.median():.0f} s, range {runs.min():.0f}–{runs.max():.0f} s)"
            )
    if pretraining is not None and "wall_s" in pretraining and not pretraining.empty:
        pre = pretraining.drop_duplicates("run_id")["wall_s"].dropna()
        if len(pre):
            parts.append(f"{len(pre)} pretraining runs took {pre.sum() / 3600:.2f} h")
    if not parts:
        return None
    text = (
        "Measured compute (wall time of each job, from its DONE marker, summed over jobs: "
        "jobs that ran side by side count each, so this is job time, not elapsed time; only "
        "the finished jobs of the study's plan): " + "; ".join(parts)
    )
    devices = devices_text(results, pretraining)
    return text + (f". Ran on: {devices}." if devices else ".")


def devices_text(results: pd.DataFrame, pretraining: pd.DataFrame | None) -> str:
    """``device (N jobs)`` for every device the jobs' DONE markers name, most jobs first
    (jobs whose marker names none are counted as "not recorded" when others are named)."""
    jobs = [
        t.drop_duplicates("run_id")
        for t in (results, pretraining)
        if t is not None and not t.empty and "device" in t
    ]
    if not jobs:
        return ""
    device = pd.concat([j["device"] for j in jobs], ignore_index=True)
    if device.isna().all():
        return ""
    counts = device.fillna("not recorded").value_counts()
    return "; ".join(f"{name} ({n} job{'s' * (n != 1)})" for name, n in counts.items())


def realisations_text(results: pd.DataFrame, pretraining: pd.DataFrame | None = None) -> str | None:
    """Which pipelines' fine-tunes started from more than one pretraining run (told
    apart by ``init_fingerprint``), or ``None`` when every pipeline had one. Each
    fingerprint is named with the pretraining run whose weights it is, where the
    ``pretraining`` table knows it (``encoder_fingerprint``)."""
    if "init_fingerprint" not in results:
        return None
    runs = results.drop_duplicates("run_id")
    runs = runs[runs["init_fingerprint"].fillna("").astype(str) != ""]
    # a length study's per-epoch encoders differ by design: compare within one epoch
    epoch = runs["pretrain_epoch"] if "pretrain_epoch" in runs else pd.Series(np.nan, runs.index)
    runs = runs.assign(_what=[
        p if np.isnan(e) else f"{p} (encoder of epoch {e:g})"
        for p, e in zip(runs["pipeline"], epoch.astype(float), strict=True)
    ])  # fmt: skip
    owners: dict[str, list[str]] = {}
    if pretraining is not None and "encoder_fingerprint" in pretraining:
        for row in pretraining.drop_duplicates("run_id").itertuples():
            if isinstance(row.encoder_fingerprint, str) and row.encoder_fingerprint:
                name = run_name(row.run_id, bool(getattr(row, "superseded", False)))
                owners.setdefault(row.encoder_fingerprint, []).append(name)
    owner = {
        fp: ("pretraining run " if len(names) == 1 else "pretraining runs ") + ", ".join(names)
        for fp, names in owners.items()
    }  # a re-run that reproduced the same weights: both runs named
    parts = []
    for pipeline, group in runs.groupby("_what", sort=True):
        counts = group["init_fingerprint"].value_counts()
        if len(counts) > 1:
            listed = ", ".join(
                f"{fp} ({n} run{'s' * (n != 1)}" + (f"; {owner[fp]}" if fp in owner else "") + ")"
                for fp, n in counts.items()
            )
            parts.append(f"{pipeline}: {listed}")
    if not parts:
        return None
    return (
        "Fine-tunes of one pipeline started from different pretraining runs (weights are "
        "not committed, so a store continued on another machine re-runs its pretraining; "
        "the runs are told apart by the fingerprint of the weights they loaded): "
        + "; ".join(parts)
        + "."
    )


def pretraining_section(
    pretraining: pd.DataFrame | None, fig_dir: Path
) -> tuple[Section, list[Path]]:
    """The pretraining curves (figure P) and each run's first and last epoch loss."""
    sec = Section("Pretraining")
    paths = run_figures.plot_pretraining_curves(pretraining, fig_dir / "figP_pretraining_loss")
    sec.figure(
        paths,
        "Figure P. Pretraining loss per epoch (mean over the epoch's logged steps), one "
        "panel per domain-pretraining job (a job run again on another machine: one line "
        "per run, the superseded one dashed).",
        "No pretraining loss curves in the study folder: figure P skipped.",
    )
    curves = None if pretraining is None else pretraining[pretraining["loss"].notna()]
    if curves is not None and not curves.empty:
        rows = []
        # a job run twice (another machine): one row per run, named, in every row
        several = bool(curves.groupby("pipeline")["run_id"].nunique().gt(1).any())
        ordered = curves.sort_values("pipeline", kind="stable")  # runs in collect's order
        for (pipeline, _), sub in ordered.groupby(["pipeline", "run_id"], sort=False):
            sub = sub.sort_values("epoch")
            tail = sub["loss"].iloc[-max(2, -(-len(sub) // 5)) :]  # ≥ 2 epochs
            rows.append(
                {
                    "pipeline": pipeline,
                    **({"run": _run_label(sub)} if several else {}),
                    "method": sub["method"].iloc[0],
                    "epochs": len(sub),
                    "steps": int(sub["steps"].max()),
                    "first-epoch loss": sub["loss"].iloc[0],
                    "last-epoch loss": sub["loss"].iloc[-1],
                    "last 20 % range / first-to-last drop": (tail.max() - tail.min())
                    / max(abs(sub["loss"].iloc[0] - sub["loss"].iloc[-1]), 1e-12),
                    "collapse flagged": bool(sub["collapsed"].astype(bool).any()),
                }
            )
        sec.table(
            pd.DataFrame(rows),
            "Each pretraining run: loss at its first and last epoch, and how much the loss "
            "still moved over the last 20 % of its epochs relative to its whole drop (small: "
            "flattened):",
        )
    return sec, list(paths)


def _run_label(sub: pd.DataFrame) -> str:
    """A pretraining run's id, marked when superseded, with its encoder fingerprint."""
    first = sub.iloc[0]
    label = run_name(first["run_id"], bool(first.get("superseded", False)))
    fp = first.get("encoder_fingerprint")
    return label + (f", weights {fp}" if isinstance(fp, str) and fp else "")
