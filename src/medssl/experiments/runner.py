"""Running a study's jobs: the claim loop, local workers and SLURM through submitit.

Every worker (a local process, a SLURM array task, or a second driver started on the
same folder) runs the same loop: take a job whose dependencies are done, claim it,
run or resume it, mark it done (or failed), repeat. Finished runs are never
recomputed; interrupted ones resume from their own checkpoints; failed ones are
retried by the next driver start.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from medssl.artifacts.rundir import RunDir
from medssl.errors import Preempted
from medssl.experiments import store
from medssl.experiments.plan import Job, Plan
from medssl.training.reproducible import apply_blas_settings

log = logging.getLogger(__name__)


def run_job(job: Job) -> dict:
    """Run (or resume) one job; fine-tunes are evaluated on the test split too."""
    apply_blas_settings()
    if job.kind == "pretrain":
        from medssl.training.pretrain import pretrain

        r = pretrain(job.config, resume=True, progress=False)
        return {"steps": r.steps, "final_loss": r.final_loss}
    from medssl.evaluation.evaluate import evaluate
    from medssl.training.finetune import finetune

    r = finetune(job.config, resume=True, progress=False)
    m = evaluate(r.run_dir, "test")
    return {"steps": r.steps, "test_slice_iou_mean": m["slice_iou"]["mean"]}


def machine() -> str:
    """What ran a job, for its ``DONE`` marker: the device as ``medssl bench`` names it
    (GPU name, or CPU model with torch's thread count and its bf16 features), the
    machine's core count and the torch version."""
    import torch

    from medssl.training.bench import device_name

    return f"{device_name()}; {os.cpu_count()} cores; torch {torch.__version__}"


@dataclass
class WorkerStats:
    ran: int = 0
    failed: int = 0
    preempted: int = 0


@dataclass(frozen=True)
class WorkerOptions:
    """How every worker of a study treats its jobs.

    Attributes:
        stale_after: seconds after which a silent claim is considered abandoned.
        keep_checkpoints: keep each finished job's resume checkpoints (deleted by default:
            a done job is never resumed, and a ResNet-18 U-Net fine-tune's are ≈330 MB).
        allow_collapsed: also fine-tune from a pretraining whose collapse check fired
            (by default those fine-tunes wait, and ``medssl study status`` names them).
    """

    stale_after: float = store.STALE_AFTER_S
    keep_checkpoints: bool = False
    allow_collapsed: bool = False


def _ready(
    plan: Plan, root: Path, attempted: set[str], allow_collapsed: bool = False
) -> tuple[list[Job], bool]:
    """Jobs that can start now, and whether anything is left that may become ready.

    A job whose pretraining finished with its collapse check fired is neither, unless
    ``allow_collapsed``: it waits for a decision (``medssl study status`` names it)."""
    ready, pending = [], False
    waiting = (
        set()
        if allow_collapsed
        else store.collapsed_pretrainings(root, (d for job in plan.jobs for d in job.depends))
    )
    for job in plan.jobs:
        if job.id in attempted or store.is_done(root, job.id):
            continue
        if waiting.intersection(job.depends):
            continue
        if all(store.is_done(root, d) for d in job.depends):
            ready.append(job)
        elif not any(d in attempted and not store.is_done(root, d) for d in job.depends):
            pending = True  # a dependency is still running elsewhere
    return ready, pending or bool(ready)


def worker_loop(
    plan: Plan,
    root: Path,
    options: WorkerOptions = WorkerOptions(),
    poll: float = 2.0,
    progress: bool = False,
) -> WorkerStats:
    """Claim and run jobs until none is left that this worker could run.

    A finished job's resume checkpoints are deleted once it is marked done, unless
    ``options.keep_checkpoints``: a done job is never resumed (a done pretraining whose
    weights are missing runs again from scratch). Its weights and results stay.
    Fine-tunes from a pretraining whose collapse check fired are left pending (they would
    spend their compute on a collapsed encoder) unless ``options.allow_collapsed``."""
    stats, attempted = WorkerStats(), set()
    bar = tqdm(total=len(plan.jobs), desc="study", unit="run", disable=not progress)
    while True:
        ready, anything_left = _ready(plan, root, attempted, options.allow_collapsed)
        bar.n = sum(store.is_done(root, j.id) for j in plan.jobs)
        bar.refresh()
        if not anything_left:
            break
        claims = ((j, store.try_claim(root, j.id, options.stale_after)) for j in ready)
        job, claim = next(((j, c) for j, c in claims if c), (None, None))
        if job is None:
            time.sleep(poll)  # everything ready is claimed by others; wait for them
            continue
        if store.is_done(root, job.id):  # finished by another worker since _ready
            claim.release()
            continue
        attempted.add(job.id)
        if options.allow_collapsed:
            for dep in store.allow_collapsed(root, job.depends):
                log.warning("job %s: from collapsed pretraining %s (allowed)", job.id, dep)
        start = time.time()
        store.append_ledger(
            root, {"job": job.id, "kind": job.kind, "pid": os.getpid(), "start": start}
        )
        try:
            info = run_job(job)
            store.mark_done(
                root,
                job.id,
                {**info, "seconds": time.time() - start, "kind": job.kind, "device": machine()},
            )
            stats.ran += 1
        except Preempted as exc:
            log.warning("job %s: %s; this worker stops", job.id, exc)
            stats.preempted += 1
            break
        except Exception:
            log.error("job %s (%s) failed", job.id, job.meta)
            store.mark_failed(root, job.id, traceback.format_exc())
            stats.failed += 1
        else:
            if not options.keep_checkpoints:
                _drop_checkpoints(root, job.id)
        finally:
            claim.release()
    bar.close()
    return stats


def _drop_checkpoints(root: Path, job_id: str) -> None:
    """Delete a done job's resume checkpoints; a failure to delete is only a warning (the
    job stays done)."""
    try:
        freed = RunDir(store.run_dir(root, job_id)).drop_resume_state()
    except (OSError, RuntimeError) as exc:
        log.warning("job %s done; its checkpoints could not be deleted (%s)", job_id, exc)
    else:
        log.info("job %s done; its checkpoints (%.0f MB) deleted", job_id, freed / 2**20)


def worker_threads(workers: int, cores: int | None) -> int:
    """Intra-op threads of each of ``workers`` CPU workers sharing ``cores``: an equal
    share, at least one (on 2 cores, two single-threaded workers train ≈ 18 % more images
    per second than one two-threaded process: docs/acdc-cpu-study/study_notes.md)."""
    return max(1, (cores or 1) // max(1, workers))


def _local_worker(
    plan: Plan, root: str, gpu: int | None, options: WorkerOptions, threads: int | None = None
) -> None:
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    elif threads and "OMP_NUM_THREADS" not in os.environ:
        import torch

        torch.set_num_threads(threads)  # CPU workers share the cores, not oversubscribe them
    logging.basicConfig(level=logging.INFO)
    worker_loop(plan, Path(root), options)


def run_local(
    plan: Plan,
    root: Path,
    workers: int = 1,
    options: WorkerOptions = WorkerOptions(),
    progress: bool = True,
) -> WorkerStats:
    """Run the plan with ``workers`` processes (one per GPU when GPUs exist; on CPUs each
    gets an equal share of the cores as its thread count, unless ``OMP_NUM_THREADS`` is
    set)."""
    if workers <= 1:
        return worker_loop(plan, root, options, progress=progress)
    import torch

    n_gpu = torch.cuda.device_count()
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(
            target=_local_worker,
            args=(
                plan,
                str(root),
                (i % n_gpu) if n_gpu else None,
                options,
                None if n_gpu else worker_threads(workers, os.cpu_count()),
            ),
        )
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return WorkerStats(ran=sum(store.is_done(root, j.id) for j in plan.jobs))


class SlurmWorker:
    """A submitit-callable worker; on pre-emption it is requeued and resumes its runs."""

    def __init__(self, plan: Plan, root: str, options: WorkerOptions = WorkerOptions()) -> None:
        self.plan, self.root, self.options = plan, root, options

    def __call__(self) -> int:
        return worker_loop(self.plan, Path(self.root), self.options).ran

    def checkpoint(self):  # submitit calls this on SIGUSR2/timeout: requeue the same worker
        import submitit

        return submitit.helpers.DelayedSubmission(SlurmWorker(self.plan, self.root, self.options))


def run_slurm(
    plan: Plan,
    root: Path,
    workers: int,
    slurm: dict | None = None,
    executor=None,
    options: WorkerOptions = WorkerOptions(),
) -> list:
    """Submit ``workers`` array tasks running the claim loop; returns submitit jobs.

    Args:
        plan: the study plan.
        root: study folder (on a file system shared by the nodes).
        workers: array size.
        slurm: submitit parameters, e.g. ``{"slurm_partition": "gpu", "gpus_per_node": 1,
            "timeout_min": 240}``.
        executor: a submitit executor to use instead (``submitit.LocalExecutor`` in tests).
        options: how the workers treat their jobs (:class:`WorkerOptions`).
    """
    import submitit

    ex = executor or submitit.AutoExecutor(folder=root / "slurm")
    params = {"timeout_min": 240, **(slurm or {})}
    if isinstance(ex, submitit.AutoExecutor):
        ex.update_parameters(slurm_array_parallelism=workers, **params)
    else:
        ex.update_parameters(timeout_min=params["timeout_min"])
    with ex.batch():
        jobs = [ex.submit(SlurmWorker(plan, str(root), options)) for _ in range(workers)]
    return jobs
