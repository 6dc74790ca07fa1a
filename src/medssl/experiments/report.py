"""``medssl report DIR``: collect a study folder and write its report."""

from __future__ import annotations

import shutil
from pathlib import Path

from medssl.analysis.report import write_report
from medssl.experiments import store
from medssl.experiments.collect import collect


def _overlays(results, root: Path, limit: int = 4) -> list[Path]:
    """Overlays of the largest budget's first seed, one per pipeline, copied under names
    that say which pipeline and budget they show."""
    if results.empty:
        return []
    main = results[results["study"] == "main"]
    top = main[main["budget"] == main["budget"].max()].sort_values(["pipeline", "seed"])
    out = root / "figures" / "overlay_examples"
    paths: list[Path] = []
    for _, row in top.drop_duplicates("pipeline").iterrows():
        for src in sorted((Path(row["run_dir"]) / "overlays").glob("*.png"))[:1]:
            out.mkdir(parents=True, exist_ok=True)
            dst = out / f"{row['pipeline']}_{row['budget']}-slices_{src.stem}.png"
            shutil.copyfile(src, dst)
            paths.append(dst)
    return paths[:limit]


def study_report(root: str | Path, synthetic: bool = False, title: str | None = None) -> list[Path]:
    """Collect ``root`` and write ``report.md`` and ``report.html`` with figures into it."""
    root = Path(root)
    results, curves = collect(root)
    plan = store.load_plan_json(root)
    notes = [f"Pipeline {k} skipped: {v}" for k, v in plan.get("skipped", {}).items()]
    return write_report(
        results,
        curves,
        root,
        title or f"medssl study report: {root.name}",
        synthetic,
        overlays=_overlays(results, root),
        notes=notes,
    )
