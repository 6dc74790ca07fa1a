"""Study files: pipelines × label budgets × seeds (+ a pretraining-length study).

A study file (YAML)::

    name: acdc-reduced
    data: ../shared/acdc            # source folder or prepared cache
    domain: acdc                    # names the pipelines byol-<domain>
    pipelines: [random, byol-acdc, supervised-imagenet]
    budgets: {kind: slices, values: [1, 3, 7, 15, 30]}
    seeds: [0, 13, 42]
    pretrain: {preset: cpu-small, set: {epochs: 5}}
    finetune: {preset: cpu-small, set: {steps: 300}}
    pretraining_length: {pipeline: byol-acdc, budget: 30, seeds: [0]}   # optional
    weights: {imagenet: null, byol-imagenet: path/to/resnet50_byol_imagenet2012.pth.tar}

Pipelines are chains of weight sources and pretraining stages:

| name | chain |
|---|---|
| ``random`` | random init → fine-tune |
| ``supervised-imagenet`` | timm ImageNet weights → fine-tune |
| ``byol-imagenet`` | BYOL-ImageNet file → fine-tune |
| ``byol-<domain>`` (specialist) | random → BYOL on the domain → fine-tune |
| ``supervised-imagenet+byol-<domain>`` | ImageNet → BYOL on the domain → fine-tune |
| ``byol-imagenet+byol-<domain>`` | BYOL-ImageNet → BYOL on the domain → fine-tune |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from medssl.config import ConfigError

STUDY_SLICE_BUDGETS = (1, 3, 7, 15, 30, 75, 150, 300, 749, 1498)
STUDY_SEEDS = (0, 13, 42, 123, 1111, 77, 62, 91, 7, 5)


@dataclass(frozen=True)
class StageSpec:
    """Preset name and overrides of a pretraining or fine-tuning stage."""

    preset: str = "paper"
    set: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LengthStudy:
    """Fine-tune the encoder of every epoch of one domain pretraining."""

    pipeline: str
    budget: int
    seeds: tuple[int, ...] = (0,)
    epochs: tuple[int, ...] | None = None  # None: every saved epoch 0..E


@dataclass(frozen=True)
class Study:
    """A parsed study file."""

    name: str
    data: str
    domain: str
    pipelines: tuple[str, ...]
    budget_kind: str
    budgets: tuple[int, ...]
    seeds: tuple[int, ...]
    pretrain: StageSpec
    finetune: StageSpec
    length: LengthStudy | None = None
    weights: dict[str, str | None] = field(default_factory=dict)
    allow_download: bool = False


@dataclass(frozen=True)
class Pipeline:
    """A resolved pipeline: the initial weight source and whether BYOL on the domain follows."""

    name: str
    init: str | None  # None: the named weights are not available
    domain_pretraining: bool
    skip_reason: str | None = None


def load_study(path: str | Path) -> Study:
    """Parse and validate a study file; relative data/weight paths are taken from its folder."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read study file ({exc})") from exc
    return parse_study(raw, base=path.parent)


def _rel(value: str | None, base: Path) -> str | None:
    if value is None or value in ("random", "imagenet"):
        return value
    p = Path(value)
    return str(p if p.is_absolute() else (base / p))


def parse_study(raw: dict, base: Path = Path(".")) -> Study:
    """Build a :class:`Study` from a dict (see the module docstring for the keys)."""
    unknown = set(raw) - {
        "name",
        "data",
        "domain",
        "pipelines",
        "budgets",
        "seeds",
        "pretrain",
        "finetune",
        "pretraining_length",
        "weights",
        "allow_download",
    }
    if unknown:
        raise ConfigError(f"unknown study keys {sorted(unknown)}")
    for key in ("data", "pipelines"):
        if key not in raw:
            raise ConfigError(f"study file needs '{key}'")
    budgets = raw.get("budgets", {})
    kind = budgets.get("kind", "slices")
    if kind not in ("slices", "patients"):
        raise ConfigError(f"budgets.kind must be slices or patients, got {kind!r}")
    length = raw.get("pretraining_length")
    weights = {k: _rel(v, base) for k, v in (raw.get("weights") or {}).items()}
    return Study(
        name=str(raw.get("name", "study")),
        data=_rel(str(raw["data"]), base) or "",
        domain=str(raw.get("domain", "domain")),
        pipelines=tuple(raw["pipelines"]),
        budget_kind=kind,
        budgets=tuple(int(b) for b in budgets.get("values", STUDY_SLICE_BUDGETS)),
        seeds=tuple(int(s) for s in raw.get("seeds", STUDY_SEEDS)),
        pretrain=StageSpec(**(raw.get("pretrain") or {})),
        finetune=StageSpec(**(raw.get("finetune") or {})),
        length=None
        if not length
        else LengthStudy(
            pipeline=length["pipeline"],
            budget=int(length["budget"]),
            seeds=tuple(int(s) for s in length.get("seeds", (0,))),
            epochs=None if length.get("epochs") is None else tuple(length["epochs"]),
        ),
        weights=weights,
        allow_download=bool(raw.get("allow_download", False)),
    )


def resolve_pipeline(name: str, study: Study, imagenet_ok: tuple[bool, str]) -> Pipeline:
    """Turn a pipeline name into its chain, or a skipped pipeline with the reason."""
    parts = name.split("+")
    domain = f"byol-{study.domain}"
    domain_pretraining = parts[-1] == domain
    base = parts[0] if len(parts) == 2 or not domain_pretraining else "random"
    if len(parts) > 2 or (len(parts) == 2 and not domain_pretraining):
        raise ConfigError(f"unknown pipeline {name!r}")
    if base == "random":
        return Pipeline(name, "random", domain_pretraining)
    if base == "supervised-imagenet":
        local = study.weights.get("imagenet")
        if local:
            return _file_pipeline(name, local, domain_pretraining)
        ok, why = imagenet_ok
        return Pipeline(name, "imagenet" if ok else None, domain_pretraining, None if ok else why)
    if base == "byol-imagenet":
        local = study.weights.get("byol-imagenet")
        if not local:
            return Pipeline(
                name,
                None,
                domain_pretraining,
                "no BYOL-ImageNet weights file given (weights: {byol-imagenet: PATH})",
            )
        return _file_pipeline(name, local, domain_pretraining)
    raise ConfigError(f"unknown pipeline {name!r} (domain pipelines are named {domain!r})")


def _file_pipeline(name: str, path: str, domain_pretraining: bool) -> Pipeline:
    if not Path(path).is_file():
        return Pipeline(name, None, domain_pretraining, f"weights file {path} not found")
    return Pipeline(name, path, domain_pretraining)
