"""``medssl report DIR``: collect a study folder and write its report."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pandas as pd

from medssl.analysis.report import write_report
from medssl.analysis.stats import shared_cells
from medssl.artifacts.study import StudyDir
from medssl.experiments import store
from medssl.experiments.collect import collect
from medssl.experiments.settings import settings_tables


def _pipeline_order(plan: dict, results) -> list[str]:
    """The study's pipelines in study-file order (as planned), then any others."""
    order: list[str] = []
    for job in plan.get("jobs", []):
        name = job.get("meta", {}).get("pipeline")
        if job.get("kind") == "finetune" and job["meta"].get("study") == "main" and name:
            order += [name] if name not in order else []
    seen = set(results["pipeline"]) if "pipeline" in results else set()
    return order + sorted(seen - set(order))


#: In each figure-7 example folder: the id of the run its images were copied from.
EXAMPLE_SOURCE = "source_run.txt"


def _example_images(row, root: Path, folder: Path) -> tuple[list[Path], bool]:
    """The overlays of run ``row`` and whether they are its own (``False``: the copies a
    report made earlier, in ``folder``). A run's overlays are not committed (its
    ``.gitignore``); on a fresh clone the committed copies stand in for them, when they
    were copied from this very run, so the report regenerates byte for byte."""
    own = sorted((root / row["run_dir"] / "overlays").glob("*.png"))
    if own:
        return own, True
    source = folder / EXAMPLE_SOURCE
    if source.is_file() and source.read_text().strip() == str(row["run_id"]):
        return sorted(folder.glob("*.png")), False
    return [], False


def _overlays(
    results, root: Path, order: list[str] | None = None, per_pipeline: int = 2
) -> dict[str, list[Path]]:
    """Figure 7's images: for EVERY pipeline with main-study runs (in study order), up to
    ``per_pipeline`` overlays of one of its runs, the same test volumes for every pipeline
    where possible, copied under names that say which pipeline and budget they show
    (``figures/overlay_examples/<pipeline>_<budget>-slices/``, with the source run's id in
    ``source_run.txt``). The runs are the largest budget and first seed that every pipeline
    ran (the same labels for all); where no such cell exists yet, each pipeline's own
    largest budget and first seed."""
    if results.empty:
        return {}
    main = results[results["study"] == "main"]
    if main.empty:
        return {}
    order = [p for p in (order or sorted(main["pipeline"].unique())) if p in set(main["pipeline"])]
    main = main[main["pipeline"].isin(order)]
    shared = shared_cells(main)
    if not shared.empty:
        top = shared[shared["budget"] == shared["budget"].max()]
        main = top[top["seed"] == top["seed"].min()]
    runs = {}
    for pipeline in order:
        sub = main[main["pipeline"] == pipeline]
        top = sub[sub["budget"] == sub["budget"].max()].sort_values("seed")
        runs[pipeline] = top.iloc[0]
    out = root / "figures" / "overlay_examples"
    folders = {p: out / f"{p}_{r['budget']}-slices" for p, r in runs.items()}
    if out.is_dir():  # examples of runs no longer shown (a larger budget has run since)
        for stale in set(out.iterdir()) - set(folders.values()):
            if stale.is_dir():
                shutil.rmtree(stale)
            else:
                stale.unlink()
    found = {p: _example_images(r, root, folders[p]) for p, r in runs.items()}
    images = {p: imgs for p, (imgs, _) in found.items()}
    stems = [x.stem for xs in images.values() for x in xs]
    common = sorted({s for s in stems if all(s in {x.stem for x in xs} for xs in images.values())})
    picked: dict[str, list[Path]] = {}
    for pipeline, folder in folders.items():
        chosen = [x for x in images[pipeline] if x.stem in common] or images[pipeline]
        chosen = chosen[:per_pipeline]
        if found[pipeline][1]:  # fresh copies of the run's own overlays replace the old
            if folder.is_dir():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            (folder / EXAMPLE_SOURCE).write_text(f"{runs[pipeline]['run_id']}\n")
        picked[pipeline] = []
        for src in chosen:
            dst = folder / src.name  # the volume's name: figure 7 matches rows by it
            if src != dst:
                shutil.copyfile(src, dst)
            picked[pipeline].append(dst)
    return picked


def study_report(root: str | Path, synthetic: bool = False, title: str | None = None) -> list[Path]:
    """Collect ``root`` and write ``report.md`` and ``report.html`` with figures into it
    (with the folder's hand-written ``study_notes.md`` first, when there is one)."""
    root = Path(root)
    results, curves = collect(root)
    pretraining = pd.read_parquet(StudyDir(root).table("pretraining"))
    plan = store.load_plan_json(root)
    notes = [f"Pipeline {k} skipped: {v}" for k, v in plan.get("skipped", {}).items()]
    if retried := _attempts_note(plan, root):
        notes.append(retried)
    return write_report(
        results,
        curves,
        root,
        title or f"medssl study report: {plan.get('name') or root.name}",
        synthetic,
        overlays=_overlays(results, root, _pipeline_order(plan, results)),
        notes=notes,
        pretraining=pretraining,
        intro=_intro(root),
        settings=settings_tables(plan),
    )


def _attempts_note(plan: dict, root: Path) -> str | None:
    """Which finished jobs started more than once (``ledger.jsonl``: stopped and resumed,
    or run again): their ``DONE`` wall time is the last attempt's only."""
    starts = Counter(e.get("job") for e in store.read_ledger(root))
    again = {
        job["id"]: starts[job["id"]]
        for job in plan.get("jobs", [])
        if starts[job["id"]] > 1 and store.is_done(root, job["id"])
    }
    if not again:
        return None
    listed = ", ".join(f"{jid} ({n})" for jid, n in sorted(again.items()))
    return (
        f"{len(again)} finished job(s) started more than once "
        f"({StudyDir(root).ledger.name}: stopped and "
        "resumed, or run again from scratch); the measured compute counts only the last "
        "attempt of each (and a superseded pretraining run's own time, which its record "
        f"keeps), so it is a lower bound. Job (starts): {listed}."
    )


#: A study folder's hand-written part of its report (what was run and why, what it
#: shows), put first in ``report.md``; the rest is generated from the committed results.
INTRO_FILE = "study_notes.md"


def _intro(root: Path) -> str | None:
    path = root / INTRO_FILE
    return path.read_text(encoding="utf-8") if path.is_file() else None
