"""Run directories: one config per directory, resume only the same run."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from medssl.config import ConfigError, load_yaml
from medssl.training.callbacks import LAST_CKPT

T = TypeVar("T")


def resume_checkpoint(run_dir: Path, cfg: T, resume: bool) -> Path | None:
    """Return the checkpoint to resume from (or ``None`` for a fresh run).

    Raises:
        ConfigError: when ``run_dir`` holds a run with a different config, or a started
            run and ``resume`` is False (nothing already computed is overwritten).
    """
    saved = run_dir / "config.yaml"
    if not saved.exists():
        return None
    if load_yaml(type(cfg), saved) != cfg:
        raise ConfigError(f"{run_dir}: holds a run with another config; choose another --out")
    ckpt = run_dir / "checkpoints" / LAST_CKPT
    if not resume:
        if (run_dir / "result.json").exists() or ckpt.exists():
            raise ConfigError(f"{run_dir}: run already started; pass --resume to continue it")
        return None
    return ckpt if ckpt.exists() else None
