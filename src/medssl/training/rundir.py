"""Resuming a run directory: one config per directory, resume only the same run.

A helper of the run template (:mod:`medssl.training.run`); the files themselves are
named by :class:`~medssl.artifacts.rundir.RunDir`.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import TypeVar

import torch

from medssl.artifacts.rundir import RunDir
from medssl.configs import config_identity
from medssl.errors import WeightsError
from medssl.overrides import ConfigError
from medssl.training.callbacks import checkpoint_problem

log = logging.getLogger(__name__)

T = TypeVar("T")

__all__ = ["checkpoint_problem", "checkpoint_step", "resume_checkpoint"]


def resume_checkpoint(run_dir: Path | RunDir, cfg: T, resume: bool) -> Path | None:
    """Return the checkpoint to resume from (or ``None`` for a fresh run).

    ``last.ckpt`` is preferred; a damaged one is skipped with a warning for
    ``previous.ckpt`` (see :class:`~medssl.training.callbacks.AtomicCheckpoint`).

    Raises:
        ConfigError: when ``run_dir`` holds a run with a different config, or a started
            run and ``resume`` is False (nothing already computed is overwritten).
    """
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    if not run.config_file.exists():
        return None
    if config_identity(run.load_config(type(cfg))) != config_identity(cfg):
        raise ConfigError(f"{run.path}: holds a run with another config; choose another --out")
    candidates = [run.last_ckpt, run.previous_ckpt]
    if not resume:
        if run.started:
            raise ConfigError(f"{run.path}: run already started; pass --resume to continue it")
        return None
    for ckpt in candidates:
        if not ckpt.exists():
            continue
        problem = checkpoint_problem(ckpt)
        if problem is None:
            checkpoint_step(ckpt)  # refuses a checkpoint that is not plain data
            return ckpt
        log.warning("%s is damaged (%s); skipping it", ckpt, problem)
    return None


def checkpoint_step(path: Path) -> int:
    """The global step stored in a resume checkpoint, read with ``weights_only=True``
    (tensors memory-mapped, nothing executed).

    Raises:
        WeightsError: the file holds objects whose unpickling could run code.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(
            path,
            "refused to resume: the checkpoint holds objects other than tensors and plain "
            f"data, and unpickling them could run code ({first})",
        ) from exc
    return int(state.get("global_step", 0)) if isinstance(state, dict) else 0
