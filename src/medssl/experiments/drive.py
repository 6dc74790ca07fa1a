"""``medssl study run``: expand a study, save its plan, and run it with a launcher."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from medssl.experiments import store
from medssl.experiments.plan import expand, select_pipelines
from medssl.experiments.runner import WorkerOptions, run_local, run_slurm
from medssl.experiments.status import StudyStatus, study_status
from medssl.experiments.study import Study, load_study

log = logging.getLogger(__name__)


def run_study(
    study: Study | str | Path,
    out: str | Path,
    launcher: Literal["local", "slurm"] = "local",
    workers: int = 1,
    slurm: dict | None = None,
    progress: bool = True,
    stale_after: float = store.STALE_AFTER_S,
    pipelines: Sequence[str] | None = None,
    keep_checkpoints: bool = False,
    allow_collapsed: bool = False,
) -> StudyStatus:
    """Run every job of a study in ``out`` (resumable: start it again after any stop).

    Args:
        study: a :class:`Study` or the path of a study YAML file.
        out: study folder.
        launcher: ``local`` (``workers`` processes here) or ``slurm`` (submitit array of
            ``workers`` tasks; returns once submitted).
        workers: parallel workers.
        slurm: submitit parameters for the SLURM launcher.
        progress: progress bar.
        stale_after: seconds after which a silent claim is considered abandoned.
        pipelines: run only these pipelines' jobs and the pretrainings they need (the
            saved plan and the status stay whole; the rest is left for a later run).
        keep_checkpoints: keep each finished job's resume checkpoints (by default they are
            deleted once the job is done; its weights and results are always kept).
        allow_collapsed: also fine-tune from a pretraining whose collapse check fired (by
            default those fine-tunes wait; the returned status counts them as blocked). The
            decision is saved per pretraining (``allowed-collapse/<id>``) and later runs
            and ``study status`` honour it.
    """
    study = study if isinstance(study, Study) else load_study(study)
    root = Path(out).resolve()
    plan = expand(study, root)
    store.save_plan(plan, root)
    if pipelines:
        plan = select_pipelines(plan, pipelines)
        log.info("running the jobs of %s only (%d jobs)", ", ".join(pipelines), len(plan.jobs))
    if allow_collapsed:  # the decision, saved for later runs and `study status`
        for dep in store.allow_collapsed(root, (d for job in plan.jobs for d in job.depends)):
            log.warning("pretraining %s collapsed; fine-tuning from it (allowed)", dep)
    if swept := store.sweep_leftovers(root):
        log.info("removed %d leftover claim temporaries of killed workers", swept)
    for job_id in store.reopen_missing_inputs(plan, root):
        log.warning(
            "pretraining %s: done, but the weights a pending fine-tune needs are missing "
            "(a study folder without weights?): it runs again",
            job_id,
        )
    for name, why in plan.skipped.items():
        log.warning("skipping pipeline %s: %s", name, why)
    log.info("study %s: %d jobs in %s", study.name, len(plan.jobs), root)
    options = WorkerOptions(stale_after, keep_checkpoints, allow_collapsed)
    if launcher == "slurm":
        jobs = run_slurm(plan, root, workers, slurm, options=options)
        log.info("submitted %d SLURM array tasks (%s)", len(jobs), jobs[0].job_id if jobs else "-")
    else:
        run_local(plan, root, workers, options, progress=progress)
    status = study_status(root)
    if status.blocked and not allow_collapsed:
        log.warning(
            "%d fine-tune(s) wait: their pretraining's collapse check fired (see "
            "`medssl study status`; run again with allow_collapsed / --allow-collapsed to "
            "fine-tune from it anyway)",
            sum(status.blocked.values()),
        )
    return status
