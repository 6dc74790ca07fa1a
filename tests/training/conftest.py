"""Fixtures for training tests: a tiny prepared cache and a tiny run config."""

from __future__ import annotations

from pathlib import Path

import pytest

from medssl.data.cache import prepare_cache
from tests import builders

TINY_PRETRAIN = [
    "arch=resnet18", "crop=32", "batch_size=8", "epochs=2", "ckpt_every_steps=3",
    "log_every_steps=1", "heads.proj_hidden=64", "heads.proj_out=32", "heads.pred_hidden=64",
    "warmup_epochs=0.5", "runtime.num_workers=0", "runtime.precision=32-true",
    "runtime.accelerator=cpu",
]


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    src = builders.make_acdc(root / "src", n_patients=6, n_frames=4)
    return prepare_cache(src, root / "cache").path
