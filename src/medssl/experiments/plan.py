"""Expand a study into content-addressed jobs.

Every run is identified by a hash of its resolved config (``out`` left out, and the
encoder of a pretraining stage referred to by that stage's id and epoch rather than
by path), so the same cell in two studies or two drivers is the same run, and a
pretraining stage shared by many fine-tunes is one job.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medssl.config import apply_overrides, to_dict
from medssl.experiments.study import Pipeline, Study, resolve_pipeline
from medssl.training.configs import (
    FINETUNE_PRESETS,
    PRETRAIN_PRESETS,
    FinetuneConfig,
    PretrainConfig,
    preset,
)


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
    """All jobs of a study, and the pipelines that were skipped (with why)."""

    jobs: tuple[Job, ...]
    skipped: dict[str, str]

    def by_id(self) -> dict[str, Job]:
        return {j.id: j for j in self.jobs}


def content_id(kind: str, cfg: Any, init_ref: str | None = None) -> str:
    """Hash of a run's resolved config (without ``out``; ``init`` replaced by ``init_ref``)."""
    d = to_dict(cfg)
    d.pop("out", None)
    if init_ref is not None:
        d["init"] = init_ref
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


def _pretrain_job(study: Study, pipe: Pipeline, root: Path) -> Job:
    overrides = [f"data={study.data}", f"init={pipe.init}"]
    cfg = preset(PretrainConfig, PRETRAIN_PRESETS, study.pretrain.preset, overrides)
    cfg = apply_overrides(cfg, study.pretrain.set)
    jid = content_id("pretrain", cfg)
    cfg = apply_overrides(cfg, {"out": str(root / "runs" / jid)})
    return Job(jid, "pretrain", cfg, (), {"pipeline": pipe.name, "study": "pretrain"})


def _finetune_job(
    study: Study,
    pipe: Pipeline,
    init: str,
    init_ref: str | None,
    budget: int,
    seed: int,
    root: Path,
    depends: tuple[str, ...],
    meta: dict,
) -> Job:
    key = "labelled_slices" if study.budget_kind == "slices" else "labelled_patients"
    cfg = preset(
        FinetuneConfig,
        FINETUNE_PRESETS,
        study.finetune.preset,
        [
            f"data={study.data}",
            f"init={init}",
            f"{key}={budget}",
            f"budget_seed={seed}",
            f"runtime.seed={seed}",
        ],
    )
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
            "budget_kind": study.budget_kind,
            "seed": seed,
            **meta,
        },
    )


def expand(study: Study, root: str | Path) -> Plan:
    """Every job of ``study`` with its output folder under ``root/runs/<id>``."""
    root = Path(root).resolve()
    imagenet = (True, "")
    if any("supervised-imagenet" in p for p in study.pipelines) and not study.weights.get(
        "imagenet"
    ):
        arch = preset(FinetuneConfig, FINETUNE_PRESETS, study.finetune.preset, []).arch
        arch = str(study.finetune.set.get("arch", arch))
        imagenet = imagenet_available(study, arch)
    jobs: dict[str, Job] = {}
    skipped: dict[str, str] = {}
    pretrain_of: dict[str, Job] = {}
    for name in study.pipelines:
        pipe = resolve_pipeline(name, study, imagenet)
        if pipe.init is None:
            skipped[name] = pipe.skip_reason or "weights unavailable"
            continue
        init, ref, deps = pipe.init, None, ()
        if pipe.domain_pretraining:
            pj = pretrain_of[name] = _pretrain_job(study, pipe, root)
            jobs[pj.id] = pj
            init = str(Path(pj.config.out) / "encoder_last.safetensors")
            ref, deps = f"pretrain:{pj.id}:last", (pj.id,)
        for budget in study.budgets:
            for seed in study.seeds:
                j = _finetune_job(
                    study,
                    pipe,
                    init,
                    ref,
                    budget,
                    seed,
                    root,
                    deps,
                    {"study": "main", "pretrain_epoch": None},
                )
                jobs.setdefault(j.id, j)
    if study.length is not None:
        _length_jobs(study, root, pretrain_of, jobs, skipped)
    return Plan(tuple(jobs.values()), skipped)


def _length_jobs(
    study: Study,
    root: Path,
    pretrain_of: dict[str, Job],
    jobs: dict[str, Job],
    skipped: dict[str, str],
) -> None:
    length = study.length
    assert length is not None
    pj = pretrain_of.get(length.pipeline)
    if pj is None:
        skipped[f"pretraining-length ({length.pipeline})"] = (
            "its pipeline is not a domain-pretraining pipeline of this study or was skipped"
        )
        return
    epochs = length.epochs if length.epochs is not None else tuple(range(pj.config.epochs + 1))
    pipe = Pipeline(length.pipeline, "", True)
    for epoch in epochs:
        init = str(Path(pj.config.out) / f"encoder_epoch_{epoch:03d}.safetensors")
        for seed in length.seeds:
            j = _finetune_job(
                study,
                pipe,
                init,
                f"pretrain:{pj.id}:{epoch}",
                length.budget,
                seed,
                root,
                (pj.id,),
                {"study": "length", "pretrain_epoch": epoch},
            )
            jobs.setdefault(j.id, j)
