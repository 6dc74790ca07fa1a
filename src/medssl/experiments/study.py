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
    split: splits/my-paper.json     # optional: a split file for every run (below)
    split_fold: 0                   # optional: fold of an nnU-Net splits_final.json

**Several budget families.** ``budgets`` may be a list of ``{kind, values}`` mappings::

    budgets:
      - {kind: slices, values: [1, 3, 10, 30, 100, 300, all]}   # the main study
      - {kind: patients, values: [1, 3, 7]}                     # a sub-study

The first family is the main study (figures 5-7, power-law fits, paired tests); each
further family is a sub-study named by its kind (``study`` column ``patients``,
``slices`` or ``labelled``), reported in a table of its own. ``all`` (or ``null``) in
``values`` is every labelled training slice.

**Splits and labelled sets.** ``split`` replaces the cache's split in every pretraining
and fine-tuning job (a medssl ``split.json`` or an nnU-Net ``splits_final.json`` with
``split_fold``; :mod:`medssl.data.split_files`). ``budgets: {kind: labelled, values:
[a.json, b.json]}`` fine-tunes on explicit labelled sets instead of drawn budgets (each
file: patient ids or ``[patient, frame, slice]`` triples of the train split); the
seeds then vary only the run's own randomness. File paths are relative to the study
file, and a job's content id holds the files' contents, not their paths.

**Per-pipeline pretraining.** ``pipelines`` may also be a mapping from pipeline name to
its options (``null`` for none); ``pretrain`` there overrides the study's ``pretrain`` for
that pipeline's domain-pretraining stage: ``preset`` replaces the study's preset and
``set`` is merged key by key over the study's ``set``::

    pretrain: {preset: paper, set: {epochs: 25}}     # every domain-pretraining pipeline ...
    pipelines:
      random:
      supervised-imagenet:
      byol-acdc: {pretrain: {set: {epochs: 400}}}    # ... except the specialist
      supervised-imagenet+byol-acdc:

Pipelines with different resolved pretraining configs get different pretraining jobs;
equal ones share one.

**Pretraining-length study** (Fig. 8, ``pretraining_length``): ONE domain pretraining of
``pipeline`` whose per-epoch encoders are each fine-tuned on ``budget`` labels with every
seed of ``seeds``. Keys and their defaults (those of the published figure,
``supervised_segmentation/sweeps/pretraining_epochs_byolbyol.sh`` of kaland313/SSL-MedSeg):

* ``pipeline``: default ``byol-imagenet+byol-<domain>``;
* ``budget``: default ``null``, every labelled training slice;
* ``seeds``: default ``[13]``;
* ``epochs``: default :data:`PAPER_LENGTH_EPOCHS` (1–11, 13, 15, …, 25, 26, 51, 101, 201,
  301, 401: the original's checkpoints ``ep=0…400`` are saved after K + 1 epochs);
  ``all``: every epoch 0..E of the run;
* ``pretrain``: overrides (``preset``/``set``) of the pipeline's pretraining spec; its
  ``epochs`` defaults to the pipeline's when that reaches the largest of ``epochs`` (then
  the length study reuses the pipeline's run), else to the largest of ``epochs``: one run
  covers them all.

Epoch 0 is the pipeline's initial weights (before domain pretraining), fine-tuned
straight from the pipeline's weight source.

Pipelines are chains of weight sources and pretraining stages:

| name | chain |
|---|---|
| ``random`` | random init → fine-tune |
| ``supervised-imagenet`` | timm ImageNet weights → fine-tune |
| ``byol-imagenet`` | BYOL-ImageNet file → fine-tune |
| ``byol-<domain>`` (specialist) | random → BYOL on the domain → fine-tune |
| ``supervised-imagenet+byol-<domain>`` | ImageNet → BYOL on the domain → fine-tune |
| ``byol-imagenet+byol-<domain>`` | BYOL-ImageNet → BYOL on the domain → fine-tune |
| ``METHOD-<domain>``, ``BASE+METHOD-<domain>`` | the same with any registry method |

METHOD is any method of :data:`medssl.configs.METHODS` (``simclr-acdc``,
``supervised-imagenet+densecl-acdc``, ``mim-acdc``...); its pretraining run is the
stage's preset with the method's recipe (:func:`medssl.configs.pretrain_preset`), then
the stage's ``set``. A method that pretrains a decoder (``mim``) fine-tunes from its
encoder *and* decoder (``init_decoder``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from medssl.configs import (
    FINETUNE_PRESETS,
    METHODS,
    PRETRAIN_PRESETS,
    FinetuneConfig,
    PretrainConfig,
)
from medssl.configs import preset as preset_config
from medssl.overrides import ConfigError, apply_overrides

STUDY_SLICE_BUDGETS = (1, 3, 7, 15, 30, 75, 150, 300, 749, 1498)
STUDY_SEEDS = (0, 13, 42, 123, 1111, 77, 62, 91, 7, 5)
#: The checkpoint indices of the published Fig. 8 (``pretraining_epochs`` of the original
#: sweep): the original saves ``ep=K`` at the end of epoch index K, after K + 1 epochs.
ORIGINAL_LENGTH_CHECKPOINTS = (*range(11), *range(12, 25, 2), 25, 50, 100, 200, 300, 400)
#: The same encoders in medssl's numbering (epochs completed: ``encoder_epoch_{K+1}``).
PAPER_LENGTH_EPOCHS = tuple(k + 1 for k in ORIGINAL_LENGTH_CHECKPOINTS)
#: Fine-tuning seed of the published Fig. 8 (``--seed 13`` of the original sweep).
PAPER_LENGTH_SEED = 13
BASE_PIPELINES = ("random", "supervised-imagenet", "byol-imagenet")

_STUDY_KEYS = (
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
    "split",
    "split_fold",
)
_STAGE_KEYS = ("preset", "set")
_PIPELINE_KEYS = ("pretrain",)
_LENGTH_KEYS = ("pipeline", "budget", "seeds", "epochs", "pretrain")
_BUDGET_KEYS = ("kind", "values")


@dataclass(frozen=True)
class StageSpec:
    """Preset name and overrides of a pretraining or fine-tuning stage."""

    preset: str = "paper"
    set: dict[str, Any] = field(default_factory=dict)

    def merged(self, preset: str | None = None, overrides: dict[str, Any] | None = None):
        """This spec with ``preset`` replaced (when given) and ``overrides`` merged over ``set``."""
        return StageSpec(preset or self.preset, {**self.set, **(overrides or {})})


@dataclass(frozen=True)
class LengthStudy:
    """Fine-tune the encoders of several epochs of ONE domain pretraining (Fig. 8).

    Attributes:
        pipeline: a domain-pretraining pipeline (need not be among the study's pipelines).
        budget: labels of each fine-tune (``None``: every labelled training slice).
        seeds: fine-tuning seeds of every epoch.
        epochs: encoder epochs to fine-tune (``None``: every epoch 0..E of the run).
        pretrain: the pretraining run's spec (the pipeline's, with the length study's
            overrides and at least ``max(epochs)`` epochs).
    """

    pipeline: str = ""
    budget: int | None = None
    seeds: tuple[int, ...] = (PAPER_LENGTH_SEED,)
    epochs: tuple[int, ...] | None = PAPER_LENGTH_EPOCHS
    pretrain: StageSpec | None = None


@dataclass(frozen=True)
class BudgetFamily:
    """One family of label budgets of a study.

    Attributes:
        kind: ``slices``, ``patients`` (ED and ES of N training patients) or
            ``labelled`` (explicit labelled-set files).
        values: the budgets (``None``: every labelled training slice); empty for
            ``labelled``.
        labelled_sets: the labelled-set files (``kind == "labelled"`` only).
    """

    kind: str = "slices"
    values: tuple[int | None, ...] = STUDY_SLICE_BUDGETS
    labelled_sets: tuple[str, ...] = ()

    def cells(self) -> list[tuple[int | None, str | None]]:
        """``(budget, labelled set file)`` of every cell of this family."""
        if self.kind == "labelled":
            return [(None, f) for f in self.labelled_sets]
        return [(b, None) for b in self.values]


@dataclass(frozen=True)
class Study:
    """A parsed study file.

    ``pipeline_pretrain`` holds the resolved pretraining spec of every pipeline whose
    file entry overrides the study's ``pretrain``; :meth:`pretrain_for` gives any
    pipeline's spec.
    """

    name: str
    data: str
    domain: str
    pipelines: tuple[str, ...]
    budget_kind: str
    budgets: tuple[int | None, ...]
    seeds: tuple[int, ...]
    pretrain: StageSpec
    finetune: StageSpec
    length: LengthStudy | None = None
    weights: dict[str, str | None] = field(default_factory=dict)
    allow_download: bool = False
    pipeline_pretrain: dict[str, StageSpec] = field(default_factory=dict)
    split: str | None = None
    split_fold: int | None = None
    labelled_sets: tuple[str, ...] = ()
    extra_budgets: tuple[BudgetFamily, ...] = ()

    @property
    def main_budgets(self) -> BudgetFamily:
        """The main study's budget family."""
        return BudgetFamily(self.budget_kind, self.budgets, self.labelled_sets)

    def pretrain_for(self, pipeline: str) -> StageSpec:
        """The domain-pretraining spec of ``pipeline``."""
        return self.pipeline_pretrain.get(pipeline, self.pretrain)


@dataclass(frozen=True)
class Pipeline:
    """A resolved pipeline: the initial weight source and the method of the domain
    pretraining that follows (``method=None``: none)."""

    name: str
    init: str | None  # None: the named weights are not available
    method: str | None  # None: no domain pretraining
    skip_reason: str | None = None

    @property
    def domain_pretraining(self) -> bool:
        """Whether a pretraining stage on the domain follows the initial weights."""
        return self.method is not None


def load_study(path: str | Path) -> Study:
    """Parse and validate a study file; relative data/weight paths are taken from its folder.

    Raises:
        ConfigError: one line naming the file and the offending key or value.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read study file ({exc})") from exc
    try:
        return parse_study(raw, base=path.parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _rel(value: str | None, base: Path) -> str | None:
    if value is None or value in ("random", "imagenet"):
        return value
    p = Path(value)
    return str(p if p.is_absolute() else (base / p))


def _mapping(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"'{where}' must be a mapping, got {type(value).__name__}")
    return value


def _check_keys(value: dict, known: tuple[str, ...], where: str) -> None:
    for key in value:
        if key not in known:
            prefix = f"{where}." if where else ""
            hint = "; put config overrides under set:" if known == _STAGE_KEYS else ""
            raise ConfigError(
                f"unknown study key '{prefix}{key}' (known: {', '.join(known)}{hint})"
            )


def _stage(raw: Any, where: str) -> tuple[str | None, dict[str, Any]]:
    """``(preset or None, set)`` of a stage mapping."""
    raw = _mapping(raw, where)
    _check_keys(raw, _STAGE_KEYS, where)
    preset = raw.get("preset")
    return (None if preset is None else str(preset)), dict(_mapping(raw.get("set"), f"{where}.set"))


def _check_stage(spec: StageSpec, kind: str, where: str) -> None:
    """Fail early on an unknown preset or override key of a stage."""
    cls, presets = (
        (PretrainConfig, PRETRAIN_PRESETS)
        if kind == "pretrain"
        else (FinetuneConfig, FINETUNE_PRESETS)
    )
    if spec.preset not in presets:
        raise ConfigError(
            f"'{where}.preset': unknown preset {spec.preset!r} (known: {', '.join(presets)})"
        )
    try:
        apply_overrides(cls(), spec.set)
    except ConfigError as exc:
        raise ConfigError(f"'{where}.set': {exc}") from exc


def pipeline_method(name: str, domain: str) -> str | None:
    """The pretraining method of pipeline ``name``'s domain stage (``None``: no domain
    stage). Names: a base pipeline, ``METHOD-<domain>`` (specialist) or
    ``BASE+METHOD-<domain>`` (hierarchical), METHOD one of :data:`medssl.configs.METHODS`.

    Raises:
        ConfigError: an unknown pipeline name (the message lists the known forms).
    """
    parts = name.split("+")
    stages = {f"{method}-{domain}": method for method in METHODS}
    if len(parts) == 1 and parts[0] in stages:
        return stages[parts[0]]
    if len(parts) == 1 and parts[0] in BASE_PIPELINES:
        return None
    if len(parts) == 2 and parts[1] in stages and parts[0] in BASE_PIPELINES:
        return stages[parts[1]]
    known = [*BASE_PIPELINES, f"METHOD-{domain}", f"BASE+METHOD-{domain}"]
    raise ConfigError(
        f"unknown pipeline {name!r} (known for domain {domain!r}: {', '.join(known)}; "
        f"METHOD: {', '.join(METHODS)}; BASE: {', '.join(BASE_PIPELINES[1:])})"
    )


def check_pipeline_name(name: str, domain: str) -> bool:
    """Validate a pipeline name; return whether it has a domain-pretraining stage."""
    return pipeline_method(name, domain) is not None


def _pipelines(raw: Any, domain: str, default: StageSpec) -> tuple[tuple[str, ...], dict]:
    if isinstance(raw, str) or not isinstance(raw, list | dict) or not raw:
        raise ConfigError("'pipelines' must be a non-empty list of names or a mapping")
    entries = raw.items() if isinstance(raw, dict) else ((name, None) for name in raw)
    names: list[str] = []
    specs: dict[str, StageSpec] = {}
    for name, options in entries:
        if not isinstance(name, str):
            raise ConfigError(f"'pipelines': pipeline names must be strings, got {name!r}")
        if name in names:
            raise ConfigError(f"'pipelines': {name!r} is listed twice")
        domain_stage = check_pipeline_name(name, domain)
        names.append(name)
        options = _mapping(options, f"pipelines.{name}")
        _check_keys(options, _PIPELINE_KEYS, f"pipelines.{name}")
        if "pretrain" in options:
            if not domain_stage:
                raise ConfigError(
                    f"'pipelines.{name}.pretrain': pipeline {name!r} has no "
                    "domain-pretraining stage"
                )
            preset, overrides = _stage(options["pretrain"], f"pipelines.{name}.pretrain")
            specs[name] = default.merged(preset, overrides)
            _check_stage(specs[name], "pretrain", f"pipelines.{name}.pretrain")
    return tuple(names), specs


def _files(value: Any, base: Path, where: str) -> tuple[str, ...]:
    """Existing files named by ``value`` (one path or a list), relative to the study file."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        raise ConfigError(f"'{where}' must be a file or a non-empty list of files")
    out = []
    for v in values:
        path = _rel(str(v), base) or ""
        if not Path(path).is_file():
            raise ConfigError(f"'{where}': file {path} not found")
        out.append(path)
    return tuple(out)


def _budget_families(raw: Any, base: Path) -> list[BudgetFamily]:
    """The ``budgets`` entry: one ``{kind, values}`` mapping or a list of them (the first
    is the main study; the others sub-studies, one per kind)."""
    entries = raw if isinstance(raw, list) else [raw]
    if not entries:
        raise ConfigError("'budgets' must be a mapping or a non-empty list of mappings")
    families = []
    for i, entry in enumerate(entries):
        where = "budgets" if not isinstance(raw, list) else f"budgets[{i}]"
        entry = _mapping(entry, where)
        _check_keys(entry, _BUDGET_KEYS, where)
        kind = entry.get("kind", "slices")
        if kind not in ("slices", "patients", "labelled"):
            raise ConfigError(f"'{where}.kind' must be slices, patients or labelled, got {kind!r}")
        if any(f.kind == kind for f in families):
            raise ConfigError(f"'{where}': a second budget family of kind {kind!r}")
        if kind == "labelled":
            families.append(
                BudgetFamily(kind, (), _files(entry.get("values"), base, f"{where}.values"))
            )
        else:
            values = entry.get("values", STUDY_SLICE_BUDGETS)
            families.append(BudgetFamily(kind, _budgets(values, kind, f"{where}.values")))
    return families


def _budgets(value: Any, kind: str, where: str) -> tuple[int | None, ...]:
    """Budget values: integers ≥ 1, or ``all``/``null`` (every labelled training slice,
    slice budgets only); no duplicates."""
    values = [value] if isinstance(value, int | str) or value is None else list(value)
    out: list[int | None] = []
    for v in values:
        if v is None or (isinstance(v, str) and v.lower() in ("all", "full")):
            if kind != "slices":
                raise ConfigError(f"'{where}': 'all' is a slice budget, not a {kind} budget")
            out.append(None)
            continue
        (n,) = _ints(v, where)
        if n < 1:
            raise ConfigError(f"'{where}': budgets must be at least 1, got {n}")
        out.append(n)
    if len(set(out)) != len(out):
        raise ConfigError(f"'{where}': a budget is listed twice")
    return tuple(out)


def _ints(value: Any, where: str) -> tuple[int, ...]:
    if isinstance(value, int | str):
        value = [value]
    try:
        return tuple(int(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"'{where}' must be a list of integers ({exc})") from exc


def _length(raw: Any, study: Study) -> LengthStudy | None:
    if raw is None or raw is False:
        return None
    raw = {} if raw is True else _mapping(raw, "pretraining_length")
    _check_keys(raw, _LENGTH_KEYS, "pretraining_length")
    pipeline = str(raw.get("pipeline") or f"byol-imagenet+byol-{study.domain}")
    if not check_pipeline_name(pipeline, study.domain):
        raise ConfigError(
            f"'pretraining_length.pipeline': {pipeline!r} has no domain-pretraining stage"
        )
    budget = raw.get("budget")
    if isinstance(budget, str) and budget.lower() in ("all", "full"):
        budget = None
    epochs: tuple[int, ...] | None = PAPER_LENGTH_EPOCHS
    if "epochs" in raw:
        value = raw["epochs"]
        epochs = (
            None if value is None or value == "all" else _ints(value, "pretraining_length.epochs")
        )
        if epochs is not None and (not epochs or min(epochs) < 0):
            raise ConfigError("'pretraining_length.epochs' must be non-negative epochs (or all)")
    preset, overrides = _stage(raw.get("pretrain"), "pretraining_length.pretrain")
    spec = study.pretrain_for(pipeline).merged(preset, overrides)
    _check_stage(spec, "pretrain", "pretraining_length.pretrain")
    if epochs is not None:
        if "epochs" in overrides:
            if int(overrides["epochs"]) < max(epochs):
                raise ConfigError(
                    f"'pretraining_length.pretrain.set.epochs' ({overrides['epochs']}) is below "
                    f"the largest fine-tuned epoch {max(epochs)}"
                )
        else:  # the pipeline's own run when it is long enough, else a longer one
            cfg = apply_overrides(
                preset_config(PretrainConfig, PRETRAIN_PRESETS, spec.preset), spec.set
            )
            if cfg.run_epochs < max(epochs):
                # a run of its own: stopped runs (the hierarchical "ep=25") keep their
                # schedule length, so run that schedule to its end (or to the last epoch)
                longer = max(max(epochs), int(cfg.epochs))
                spec = spec.merged(None, {"epochs": longer, "stop_epoch": None})
    return LengthStudy(
        pipeline=pipeline,
        budget=None if budget is None else int(budget),
        seeds=_ints(raw.get("seeds", (PAPER_LENGTH_SEED,)), "pretraining_length.seeds"),
        epochs=None if epochs is None else tuple(sorted(set(epochs))),
        pretrain=spec,
    )


def parse_study(raw: dict, base: Path = Path(".")) -> Study:
    """Build a :class:`Study` from a dict (see the module docstring for the keys)."""
    raw = _mapping(raw, "study file")
    _check_keys(raw, _STUDY_KEYS, "")
    for key in ("data", "pipelines"):
        if key not in raw:
            raise ConfigError(f"study file needs '{key}'")
    main, *extra = _budget_families(raw.get("budgets"), base)
    domain = str(raw.get("domain", "domain"))
    preset, overrides = _stage(raw.get("pretrain"), "pretrain")
    pretrain = StageSpec().merged(preset, overrides)
    preset, overrides = _stage(raw.get("finetune"), "finetune")
    finetune = StageSpec().merged(preset, overrides)
    _check_stage(pretrain, "pretrain", "pretrain")
    _check_stage(finetune, "finetune", "finetune")
    pipelines, per_pipeline = _pipelines(raw["pipelines"], domain, pretrain)
    weights = {k: _rel(v, base) for k, v in _mapping(raw.get("weights"), "weights").items()}
    _check_keys(weights, ("imagenet", "byol-imagenet"), "weights")
    study = Study(
        name=str(raw.get("name", "study")),
        data=_rel(str(raw["data"]), base) or "",
        domain=domain,
        pipelines=pipelines,
        budget_kind=main.kind,
        budgets=main.values,
        seeds=_ints(raw.get("seeds", STUDY_SEEDS), "seeds"),
        pretrain=pretrain,
        finetune=finetune,
        weights=weights,
        allow_download=bool(raw.get("allow_download", False)),
        pipeline_pretrain=per_pipeline,
        split=_files(raw["split"], base, "split")[0] if raw.get("split") is not None else None,
        split_fold=None if raw.get("split_fold") is None else int(raw["split_fold"]),
        labelled_sets=main.labelled_sets,
        extra_budgets=tuple(extra),
    )
    length = _length(raw.get("pretraining_length"), study)
    return study if length is None else replace(study, length=length)


def resolve_pipeline(name: str, study: Study, imagenet_ok: tuple[bool, str]) -> Pipeline:
    """Turn a pipeline name into its chain, or a skipped pipeline with the reason."""
    method = pipeline_method(name, study.domain)
    parts = name.split("+")
    base = parts[0] if len(parts) == 2 or method is None else "random"
    if base == "random":
        return Pipeline(name, "random", method)
    if base == "supervised-imagenet":
        local = study.weights.get("imagenet")
        if local:
            return _file_pipeline(name, local, method)
        ok, why = imagenet_ok
        return Pipeline(name, "imagenet" if ok else None, method, None if ok else why)
    local = study.weights.get("byol-imagenet")  # base == "byol-imagenet"
    if not local:
        return Pipeline(
            name,
            None,
            method,
            "no BYOL-ImageNet weights file given (weights: {byol-imagenet: PATH})",
        )
    return _file_pipeline(name, local, method)


def _file_pipeline(name: str, path: str, method: str | None) -> Pipeline:
    if not Path(path).is_file():
        return Pipeline(name, None, method, f"weights file {path} not found")
    return Pipeline(name, path, method)
