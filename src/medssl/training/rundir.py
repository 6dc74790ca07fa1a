"""Run directories: one config per directory, resume only the same run."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import TypeVar

import torch

from medssl.errors import WeightsError
from medssl.overrides import ConfigError, load_yaml
from medssl.training.callbacks import LAST_CKPT, PREVIOUS_CKPT, checkpoint_problem

log = logging.getLogger(__name__)

T = TypeVar("T")


def resume_checkpoint(run_dir: Path, cfg: T, resume: bool) -> Path | None:
    """Return the checkpoint to resume from (or ``None`` for a fresh run).

    ``last.ckpt`` is preferred; a damaged one is skipped with a warning for
    ``previous.ckpt`` (see :class:`~medssl.training.callbacks.AtomicCheckpoint`).

    Raises:
        ConfigError: when ``run_dir`` holds a run with a different config, or a started
            run and ``resume`` is False (nothing already computed is overwritten).
    """
    saved = run_dir / "config.yaml"
    if not saved.exists():
        return None
    if load_yaml(type(cfg), saved) != cfg:
        raise ConfigError(f"{run_dir}: holds a run with another config; choose another --out")
    folder = run_dir / "checkpoints"
    candidates = [folder / LAST_CKPT, folder / PREVIOUS_CKPT]
    if not resume:
        if (run_dir / "result.json").exists() or any(c.exists() for c in candidates):
            raise ConfigError(f"{run_dir}: run already started; pass --resume to continue it")
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
