"""The built-in synthetic demo: the whole system on a phantom, in minutes, offline.

Steps: generate the cine phantom → check it → prepare a cache (resampled to 3 mm so a
CPU can afford it) → BYOL on the training patients' unlabelled cine frames → a reduced
study (``random`` vs the specialist ``byol-phantom``; ImageNet pipelines are included
when their weights are available and reported as skipped otherwise) over three slice
budgets and two seeds, plus a pretraining-length study → report. Everything is
labelled SYNTHETIC.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from medssl.data.cache_write import prepare_cache
from medssl.data.phantom import TRUTH_FILE, generate_phantom
from medssl.data.preprocess import PrepareConfig
from medssl.data.validate import check_source
from medssl.errors import DataErrors
from medssl.experiments.drive import run_study
from medssl.experiments.report import study_report
from medssl.experiments.study import parse_study

log = logging.getLogger(__name__)

DEMO_PRETRAIN = {
    "arch": "resnet18",
    "epochs": 3,
    "batch_size": 32,
    "crop": 64,
    "heads.proj_hidden": 512,
    "heads.proj_out": 128,
    "heads.pred_hidden": 512,
    "warmup_epochs": 0.5,
    "ckpt_every_steps": 50,
    "runtime.num_workers": 0,
}
DEMO_FINETUNE = {
    "arch": "resnet18",
    "steps": 150,
    "batch_size": 8,
    "crop": 64,
    "lr": 1e-3,
    "warmup_steps": 15,
    "val_every_steps": 25,
    "ckpt_every_steps": 50,
    "runtime.num_workers": 0,
}


def demo_study(cache: Path, seed: int) -> dict:
    """The demo's study, as a study-file dict (see :mod:`medssl.experiments.study`)."""
    return {
        "name": "medssl demo (synthetic phantom)",
        "data": str(cache),
        "domain": "phantom",
        "pipelines": [
            "random",
            "byol-phantom",
            "supervised-imagenet",
            "supervised-imagenet+byol-phantom",
        ],
        "budgets": {"kind": "slices", "values": [3, 15, 60]},
        "seeds": [seed, seed + 1],
        "pretrain": {"preset": "cpu-small", "set": DEMO_PRETRAIN},
        "finetune": {"preset": "cpu-small", "set": DEMO_FINETUNE},
        "pretraining_length": {
            "pipeline": "byol-phantom",
            "budget": 15,
            "seeds": [seed],
            "epochs": [0, 3],
        },
    }


def run_demo(
    out: str | Path = "demo", patients: int = 20, seed: int = 0, workers: int = 1
) -> list[str]:
    """Run the demo into ``out``; returns summary lines (also in ``out/report.md``).

    Re-running continues where a previous (interrupted) demo stopped.
    """
    start = time.time()
    out = Path(out)
    phantom = out / "phantom"
    if not (phantom / TRUTH_FILE).exists():
        generate_phantom(phantom, patients, seed, n_frames=10, progress=True)
    report = check_source(phantom, progress=True)
    if not report.ok:
        raise DataErrors(report.problems)
    cache = prepare_cache(
        phantom, out / "cache", PrepareConfig(target_spacing=3.0), progress=True
    ).path
    status = run_study(parse_study(demo_study(cache, seed)), out / "study", workers=workers)
    paths = study_report(out / "study", synthetic=True)
    lines = [
        f"SYNTHETIC DEMO: {patients} phantom patients, {report.labelled_slices} labelled "
        f"slices, {report.series_frames} cine frames",
        *status.lines(),
        f"report: {paths[0]}",
        f"took {time.time() - start:.0f} s",
    ]
    return lines
