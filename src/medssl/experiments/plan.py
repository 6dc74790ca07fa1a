"""Expand a study into content-addressed jobs.

Every run is identified by a hash of its resolved config (``out`` left out, and the
encoder of a pretraining stage referred to by that stage's id and epoch rather than
by path), so the same cell in two studies or two drivers is the same run, and a
pretraining stage shared by many fine-tunes is one job.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from medssl.artifacts.rundir import RunDir
from medssl.configs import (
    FINETUNE_PRESETS,
    METHODS,
    FinetuneConfig,
    PretrainConfig,
    config_identity,
    preset,
    pretrain_preset,
)
from medssl.experiments.study import LengthStudy, Pipeline, StageSpec, Study, resolve_pipeline
from medssl.overrides import ConfigError, apply_overrides


@dataclass(frozen=True)
class Job:
    """One run of a study.

    Attributes:
        id: content hash (16 hex digits).
        kind: ``pretrain`` or ``finetune``.
        config: the run's resolved config (``out`` points into the study folder).
        depends: ids of jobs that must finish first.
        meta: pipeline, budget, seed, pretraining epoch and study part, for tables.
    """

    id: str
    kind: str
    config: PretrainConfig | FinetuneConfig
    depends: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """All jobs of a study, the pipelines that were skipped (with why) and the study's
    name."""

    jobs: tuple[Job, ...]
    skipped: dict[str, str]
    name: str = ""

    def by_id(self) -> dict[str, Job]:
        return {j.id: j for j in self.jobs}


def select_pipelines(plan: Plan, names: Sequence[str]) -> Plan:
    """The part of ``plan`` that fine-tunes (or pretrains for) the pipelines ``names``,
    with every job those need (their pretrainings), in the plan's order.

    A job shared by several cells (:func:`_merge`'s ``meta["also"]``) belongs to each
    cell's pipeline. Used to run a study one pipeline at a time (e.g. where pretrained
    weights do not persist between machines); the plan saved in the study folder stays
    whole.

    Raises:
        ConfigError: a name that is not a pipeline of the plan (the message lists them).
    """

    def pipelines_of(job: Job) -> set[str]:
        return {job.meta.get("pipeline"), *(c.get("pipeline") for c in job.meta.get("also", []))}

    known = sorted({p for j in plan.jobs for p in pipelines_of(j) if p})
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"pipelines {', '.join(unknown)}: not in the study (its pipelines: {', '.join(known)})"
        )
    wanted = {j.id for j in plan.jobs if pipelines_of(j) & set(names)}
    by_id = plan.by_id()
    todo = list(wanted)
    while todo:
        for dep in by_id[todo.pop()].depends:
            if dep not in wanted:
                wanted.add(dep)
                todo.append(dep)
    return replace(plan, jobs=tuple(j for j in plan.jobs if j.id in wanted))


#: config keys naming input files: the content id holds the file's contents, so a run's
#: id does not depend on where the repository is checked out
_FILE_KEYS = ("split", "labelled")


def _file_digest(path: str) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError:
        return path  # a missing file fails at run time, with its name
    return "blake2b:" + hashlib.blake2b(data, digest_size=16).hexdigest()


def content_id(kind: str, cfg: Any, init_ref: str | None = None) -> str:
    """Hash of a run's resolved config (without ``out``; ``init`` replaced by ``init_ref``)."""
    d = config_identity(cfg)  # ids of runs planned before later keys and defaults stay
    d.pop("out", None)
    for key in _FILE_KEYS:
        if d.get(key) is not None:
            d[key] = _file_digest(str(d[key]))
    if init_ref is not None:
        d["init"] = init_ref
        if d.get("init_decoder") is not None:
            d["init_decoder"] = f"{init_ref}:decoder"
    blob = json.dumps({"kind": kind, "config": d}, sort_keys=True, default=str)
    return hashlib.blake2b(blob.encode(), digest_size=8).hexdigest()


def imagenet_available(study: Study, arch: str) -> tuple[bool, str]:
    """Whether timm's ImageNet weights for ``arch`` can be used.

    Without ``allow_download`` only the local Hugging Face cache is consulted (no network
    call); with it, timm's download path is probed.
    """
    import timm
    from huggingface_hub import try_to_load_from_cache

    if study.allow_download:
        try:
            timm.create_model(arch, pretrained=True)
        except Exception as exc:
            return False, f"ImageNet weights for {arch} could not be fetched ({type(exc).__name__})"
        return True, ""
    repo = timm.models.get_pretrained_cfg(arch).hf_hub_id
    cached = [try_to_load_from_cache(repo, f) for f in ("model.safetensors", "pytorch_model.bin")]
    if repo and any(isinstance(c, str) for c in cached):
        return True, ""
    return False, (
        f"ImageNet weights for {arch} are not in the local cache and downloads are "
        "off (set allow_download: true, or give weights.imagenet: PATH)"
    )


def _trains_decoder(pipe: Pipeline) -> bool:
    return pipe.method is not None and METHODS[pipe.method].trains_decoder


def _pretrain_job(study: Study, pipe: Pipeline, spec: StageSpec, root: Path, part: str) -> Job:
    overrides = [f"data={study.data}", f"init={pipe.init}", *_split_overrides(study)]
    cfg = pretrain_preset(spec.preset, pipe.method or "byol", overrides)
    cfg = apply_overrides(cfg, spec.set)
    jid = content_id("pretrain", cfg)
    cfg = apply_overrides(cfg, {"out": str(root / "runs" / jid)})
    meta = {"pipeline": pipe.name, "study": "pretrain", "for": part, "epochs": cfg.epochs}
    return Job(jid, "pretrain", cfg, (), meta)


def _finetune_job(
    study: Study,
    pipe: Pipeline,
    init: str,
    init_ref: str | None,
    budget: int | None,
    seed: int,
    root: Path,
    depends: tuple[str, ...],
    meta: dict,
    decoder: str | None = None,
    labelled: str | None = None,
    kind: str | None = None,
) -> Job:
    """One fine-tune; ``budget=None`` fine-tunes on every labelled training slice (or on
    the explicit set ``labelled``); ``decoder``: the pretrained decoder file it starts
    from; ``kind``: the budget's kind (default: the main study's)."""
    kind = kind or study.budget_kind
    key = "labelled_patients" if kind == "patients" else "labelled_slices"
    overrides = [f"data={study.data}", f"init={init}", *_split_overrides(study)]
    overrides += [] if decoder is None else [f"init_decoder={decoder}"]
    overrides += [] if budget is None else [f"{key}={budget}"]
    overrides += [] if labelled is None else [f"labelled={labelled}"]
    overrides += [f"budget_seed={seed}", f"runtime.seed={seed}"]
    cfg = preset(FinetuneConfig, FINETUNE_PRESETS, study.finetune.preset, overrides)
    cfg = apply_overrides(cfg, study.finetune.set)
    jid = content_id("finetune", cfg, init_ref)
    cfg = apply_overrides(cfg, {"out": str(root / "runs" / jid)})
    return Job(
        jid,
        "finetune",
        cfg,
        depends,
        {
            "pipeline": pipe.name,
            "budget": budget,
            "budget_kind": kind,
            "seed": seed,
            **({} if labelled is None else {"labelled": Path(labelled).name}),
            **meta,
        },
    )


def _split_overrides(study: Study) -> list[str]:
    out = [] if study.split is None else [f"split={study.split}"]
    return out + ([] if study.split_fold is None else [f"split_fold={study.split_fold}"])


def _budget_cells(study: Study) -> list[tuple[str, str, int | None, str | None]]:
    """``(sub-study, kind, budget, labelled set file)`` of every budget cell: the main
    study's (``main``), then each further budget family's (named by its kind)."""
    families = [("main", study.main_budgets)] + [(f.kind, f) for f in study.extra_budgets]
    return [(name, f.kind, b, lab) for name, f in families for b, lab in f.cells()]


def _add(jobs: dict[str, Job], job: Job) -> Job:
    """Add ``job``; a job already planned under another study cell (same run, e.g. epoch 0
    of the length study and its base pipeline's fine-tune) also gets the new cell's meta
    under ``meta["also"]``, so :func:`~medssl.experiments.collect.collect` reports it in
    both places."""
    have = jobs.setdefault(job.id, job)
    if have is not job and job.kind == "finetune":
        cell = {k: v for k, v in job.meta.items() if k != "also"}
        same = {k: v for k, v in have.meta.items() if k != "also"}
        if cell != same and cell not in have.meta.setdefault("also", []):
            have.meta["also"].append(cell)
    return have


def _uses_timm_imagenet(study: Study) -> bool:
    names = list(study.pipelines) + ([study.length.pipeline] if study.length else [])
    return any(n.split("+")[0] == "supervised-imagenet" for n in names)


def expand(study: Study, root: str | Path) -> Plan:
    """Every job of ``study`` with its output folder under ``root/runs/<id>``.

    Each domain-pretraining pipeline gets the pretraining job of its own spec
    (:meth:`Study.pretrain_for`); equal specs share one job. The length study adds one
    pretraining job (often shared) and fine-tunes of its per-epoch encoders.

    Order (the order jobs run in): the pretraining jobs, then the main study's fine-tunes
    seed by seed (for each seed every budget cell and pipeline), then the length study's.
    """
    root = Path(root).resolve()
    imagenet = (True, "")
    if _uses_timm_imagenet(study) and not study.weights.get("imagenet"):
        arch = preset(FinetuneConfig, FINETUNE_PRESETS, study.finetune.preset, []).arch
        arch = str(study.finetune.set.get("arch", arch))
        imagenet = imagenet_available(study, arch)
    jobs: dict[str, Job] = {}
    skipped: dict[str, str] = {}
    finetunes: list[tuple[tuple[int, int, int], Job]] = []
    cells = _budget_cells(study)
    for p, name in enumerate(study.pipelines):
        pipe = resolve_pipeline(name, study, imagenet)
        if pipe.init is None:
            skipped[name] = pipe.skip_reason or "weights unavailable"
            continue
        init, ref, deps, decoder = pipe.init, None, (), None
        if pipe.domain_pretraining:
            pj = _add(jobs, _pretrain_job(study, pipe, study.pretrain_for(name), root, "main"))
            init = str(RunDir(pj.config.out).encoder_last)
            ref, deps = f"pretrain:{pj.id}:last", (pj.id,)
            if _trains_decoder(pipe):
                decoder = str(RunDir(pj.config.out).decoder_last)
        for c, (sub, kind, budget, labelled) in enumerate(cells):
            for k, seed in enumerate(study.seeds):
                j = _finetune_job(
                    study,
                    pipe,
                    init,
                    ref,
                    budget,
                    seed,
                    root,
                    deps,
                    {"study": sub, "pretrain_epoch": None},
                    decoder,
                    labelled,
                    kind,
                )
                finetunes.append(((k, c, p), j))
    # pretraining first, then the fine-tunes seed by seed (every pipeline and budget of
    # the first seed, then the next): a study stopped part-way has whole seeds done
    for _, j in sorted(finetunes, key=lambda kj: kj[0]):
        _add(jobs, j)
    if study.length is not None:
        _length_jobs(study, root, imagenet, jobs, skipped)
    return Plan(tuple(jobs.values()), skipped, study.name)


def length_epochs(length: LengthStudy, run_epochs: int) -> tuple[int, ...]:
    """The encoder epochs the length study fine-tunes (``None``: all of ``0..run_epochs``)."""
    epochs = length.epochs if length.epochs is not None else tuple(range(run_epochs + 1))
    if max(epochs) > run_epochs:
        raise ConfigError(
            f"pretraining_length: epoch {max(epochs)} is beyond its pretraining run "
            f"({run_epochs} epochs)"
        )
    return epochs


def _length_jobs(
    study: Study,
    root: Path,
    imagenet: tuple[bool, str],
    jobs: dict[str, Job],
    skipped: dict[str, str],
) -> None:
    """ONE pretraining run of the length pipeline, and a fine-tune of every listed epoch's
    encoder with every seed. Epoch 0 is the initial weights: it is fine-tuned from the
    pipeline's weight source directly (no wait for the run; the same run as the base
    pipeline's fine-tune when that cell is in the main study)."""
    length = study.length
    assert length is not None and length.pretrain is not None
    pipe = resolve_pipeline(length.pipeline, study, imagenet)
    if pipe.init is None:
        skipped[f"pretraining-length ({length.pipeline})"] = pipe.skip_reason or "unavailable"
        return
    pj = _pretrain_job(study, pipe, length.pretrain, root, "length")
    epochs = length_epochs(length, pj.config.run_epochs)
    if any(e > 0 for e in epochs):
        pj = _add(jobs, pj)
    for epoch in epochs:
        decoder = None
        if epoch == 0:
            init, ref, deps = str(pipe.init), None, ()
        else:
            init = str(RunDir(pj.config.out).encoder_epoch(epoch))
            ref, deps = f"pretrain:{pj.id}:{epoch}", (pj.id,)
            if _trains_decoder(pipe):
                decoder = str(RunDir(pj.config.out).decoder_epoch(epoch))
        for seed in length.seeds:
            j = _finetune_job(
                study,
                pipe,
                init,
                ref,
                length.budget,
                seed,
                root,
                deps,
                {"study": "length", "pretrain_epoch": epoch},
                decoder,
            )
            _add(jobs, j)
