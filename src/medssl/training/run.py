"""The run template: resolve data → build module → trainer → fit → finalise.

Every training run kind (BYOL pretraining, U-Net fine-tuning) is this one skeleton,
:func:`execute`; a kind (:class:`RunKind`) supplies only what differs:

- :meth:`RunKind.build`: the LightningModule (and what the weight import matched) from
  the cache and the patient split;
- :meth:`RunKind.save_inputs`: its own input records (label budget, pool, prepare info);
- :meth:`RunKind.trainer_settings` and :meth:`RunKind.callbacks`: its ``Trainer``
  arguments and callbacks;
- :meth:`RunKind.finish`: work after ``fit`` (the last validation, a missing export);
- :meth:`RunKind.summary`: the raw facts written to ``result.json`` (rank 0, last);
- :meth:`RunKind.load_result`: the Python result read back from the run directory.

The template does the rest, identically for every kind: MKL's reproducibility
settings (:func:`~medssl.training.reproducible.apply_blas_settings`), refusing to
overwrite another or a started run (:func:`~medssl.training.rundir.resume_checkpoint`),
seeding, resolving the cache and its split, recording the config, split and weight
import, the atomic resume checkpoint with pre-emption handling, the loggers (a CSV step log
kept across resumes, :mod:`medssl.training.loggers`, and TensorBoard, under the run's
``logs`` folder), and the "finished" marker. Every file goes
through :class:`~medssl.artifacts.rundir.RunDir`.

:func:`make_trainer` builds a kind's ``Trainer``; the benchmark (``medssl bench``)
uses it and :meth:`RunKind.build` with its own callbacks, so it times the steps a run
takes.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, Generic, TypeVar

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger

from medssl.artifacts.rundir import RunDir
from medssl.artifacts.split import Split
from medssl.data.cache_read import SliceCache
from medssl.data.resolve import resolve_run_cache
from medssl.data.splits import run_split
from medssl.models.weights import LoadReport
from medssl.overrides import ConfigError
from medssl.training.callbacks import AtomicCheckpoint, PreemptionSaver
from medssl.training.loggers import loggers, trim_step_log
from medssl.training.reproducible import apply_blas_settings
from medssl.training.rundir import checkpoint_step, resume_checkpoint
from medssl.training.runtime import trainer_kwargs

log = logging.getLogger(__name__)

C = TypeVar("C")  # the run config
R = TypeVar("R")  # the run's result


class RunKind(ABC, Generic[C, R]):
    """What one kind of training run supplies to :func:`execute`.

    Attributes:
        cfg: the run config (``data``, ``out``, ``runtime``, ``split_seed``,
            ``ckpt_every_steps`` are read by the template).
        name: the kind's name in messages (``"pretraining"``, ``"fine-tuning"``).
    """

    name = "training"

    def __init__(self, cfg: C) -> None:
        self.cfg = cfg

    @abstractmethod
    def build(
        self, cache: SliceCache, split: Split, run: RunDir
    ) -> tuple[L.LightningModule, LoadReport | None]:
        """The module to train, and the weight import's report (``None``: no import)."""

    def save_inputs(
        self, run: RunDir, cache: SliceCache, split: Split, module: L.LightningModule
    ) -> None:
        """Write the kind's own input records (the template writes config, split, init)."""

    def on_resume(self, run: RunDir, ckpt_step: int | None) -> None:
        """Before training: bring the outputs back to the checkpoint's step (``None``: a
        fresh run)."""

    def checkpoint_settings(self) -> dict[str, Any]:
        """Extra arguments of :class:`~medssl.training.callbacks.AtomicCheckpoint`."""
        return {}

    @abstractmethod
    def trainer_settings(self, module: L.LightningModule) -> dict[str, Any]:
        """The kind's ``Trainer`` arguments (steps, epochs, validation, clipping...)."""

    def callbacks(self, run: RunDir, module: L.LightningModule) -> list[Callback]:
        """The kind's own callbacks (after the checkpoint and pre-emption ones)."""
        return []

    def finish(self, trainer: L.Trainer, module: L.LightningModule, run: RunDir) -> None:
        """After a ``fit`` that was not pre-empted (every rank)."""

    @abstractmethod
    def summary(self, trainer: L.Trainer, module: L.LightningModule) -> dict[str, Any]:
        """The raw facts of the finished run (``result.json``)."""

    @abstractmethod
    def load_result(self, run: RunDir) -> R:
        """The run's result, read from its directory."""


def make_trainer(
    kind: RunKind,
    module: L.LightningModule,
    callbacks: Sequence[Callback],
    logger: Sequence[Logger] | bool,
    progress: bool,
    **overrides: Any,
) -> L.Trainer:
    """The ``Trainer`` of a run of ``kind``: the kind's settings, the runtime's
    (:func:`~medssl.training.runtime.trainer_kwargs`), then ``overrides``."""
    settings = {
        **kind.trainer_settings(module),
        "callbacks": list(callbacks),
        "logger": logger if isinstance(logger, bool) else list(logger),
        "enable_checkpointing": False,
        "enable_progress_bar": progress,
        "enable_model_summary": False,
        **trainer_kwargs(kind.cfg.runtime),
        **overrides,
    }
    return L.Trainer(**settings)


def execute(
    kind: RunKind[Any, R],
    resume: bool = False,
    progress: bool = True,
    callbacks: Sequence[Callback] = (),
) -> R:
    """Run (or resume) the run ``kind`` describes; see the module docstring.

    Raises:
        ConfigError: no data or out; the run directory holds another or a started run.
        Preempted: SIGTERM/SIGUSR1 arrived; the checkpoint was saved at a step boundary.
        NumericalError: too many consecutive non-finite losses.
    """
    apply_blas_settings()
    cfg = kind.cfg
    if not cfg.data or not cfg.out:
        raise ConfigError(f"{kind.name} needs data and out")
    run = RunDir(cfg.out)
    if resume and run.finished:
        log.info("%s already finished", run.path)
        return kind.load_result(run)
    ckpt = resume_checkpoint(run, cfg, resume)
    L.seed_everything(cfg.runtime.seed, workers=True, verbose=False)
    cache = resolve_run_cache(cfg.data, cfg.target_spacing)
    split = run_split(cache, cfg)
    module, report = kind.build(cache, split, run)
    run.mkdir()
    run.save_config(cfg)
    run.save_split(split)
    if report is not None:
        run.save_init(asdict(report))
    kind.save_inputs(run, cache, split, module)
    resume_step = None if ckpt is None else checkpoint_step(ckpt)
    kind.on_resume(run, resume_step)
    # the step log keeps what was logged before the checkpoint (every rank may do this)
    if dropped := trim_step_log(run.step_log, resume_step):
        log.info("%s: %d step-log rows of steps to train again dropped", run.step_log, dropped)
    checkpoint = AtomicCheckpoint(
        run.checkpoints, cfg.ckpt_every_steps, **kind.checkpoint_settings()
    )
    preemption = PreemptionSaver(checkpoint)
    trainer = make_trainer(
        kind,
        module,
        [checkpoint, preemption, *kind.callbacks(run, module), *callbacks],
        loggers(run),
        progress,
    )
    trainer.fit(module, ckpt_path=ckpt, weights_only=True)
    preemption.raise_if_preempted(run.path)
    kind.finish(trainer, module, run)
    if trainer.is_global_zero:
        run.save_result(kind.summary(trainer, module))
    trainer.strategy.barrier("result")  # other ranks read what rank 0 wrote
    return kind.load_result(run)
