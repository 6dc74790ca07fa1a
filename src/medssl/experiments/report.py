"""``medssl report DIR``: collect a study folder and write its report."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from medssl.analysis.report import write_report
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


def _overlays(
    results, root: Path, order: list[str] | None = None, per_pipeline: int = 2
) -> dict[str, list[Path]]:
    """Figure 7's images: for EVERY pipeline with main-study runs (in study order), up to
    ``per_pipeline`` overlays of its run at its largest budget and first seed, the same test
    volumes for every pipeline where possible, copied under names that say which pipeline
    and budget they show (``figures/overlay_examples/<pipeline>_<budget>-slices/``)."""
    if results.empty:
        return {}
    main = results[results["study"] == "main"]
    if main.empty:
        return {}
    order = [p for p in (order or sorted(main["pipeline"].unique())) if p in set(main["pipeline"])]
    runs = {}
    for pipeline in order:
        sub = main[main["pipeline"] == pipeline]
        top = sub[sub["budget"] == sub["budget"].max()].sort_values("seed")
        runs[pipeline] = top.iloc[0]
    out = root / "figures" / "overlay_examples"
    folders = {p: out / f"{p}_{r['budget']}-slices" for p, r in runs.items()}
    # a run's overlays are not committed (its .gitignore); on a fresh clone the copies made
    # for an earlier report, which are, stand in for them, so the report regenerates
    images = {
        p: sorted((root / r["run_dir"] / "overlays").glob("*.png"))
        or sorted(folders[p].glob("*.png"))
        for p, r in runs.items()
    }
    stems = [x.stem for xs in images.values() for x in xs]
    common = sorted({s for s in stems if all(s in {x.stem for x in xs} for xs in images.values())})
    picked: dict[str, list[Path]] = {}
    for pipeline, folder in folders.items():
        chosen = [x for x in images[pipeline] if x.stem in common] or images[pipeline]
        picked[pipeline] = []
        for src in chosen[:per_pipeline]:
            folder.mkdir(parents=True, exist_ok=True)
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


#: A study folder's hand-written part of its report (what was run and why, what it
#: shows), put first in ``report.md``; the rest is generated from the committed results.
INTRO_FILE = "study_notes.md"


def _intro(root: Path) -> str | None:
    path = root / INTRO_FILE
    return path.read_text(encoding="utf-8") if path.is_file() else None
