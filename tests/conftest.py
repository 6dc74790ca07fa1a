"""Shared fixtures: tiny sources built on the fly, and the real ACDC copy when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from medssl.data.cache_write import prepare_cache
from medssl.training.reproducible import apply_blas_settings
from tests import builders

# the test session is a run entry point: in-process runs need MKL's settings before
# its first call (see medssl.training.reproducible)
apply_blas_settings()

REAL_ACDC = Path(
    os.environ.get("MEDSSL_ACDC", Path(__file__).resolve().parents[1].parent / "shared" / "acdc")
)


@pytest.fixture
def acdc_source(tmp_path: Path) -> Path:
    return builders.make_acdc(tmp_path / "acdc")


@pytest.fixture
def h5_source(tmp_path: Path) -> Path:
    return builders.make_h5(tmp_path / "h5")


@pytest.fixture
def nnunet_source(tmp_path: Path) -> Path:
    return builders.make_nnunet(tmp_path / "nnunet")


@pytest.fixture
def nifti_folder(tmp_path: Path) -> Path:
    return builders.make_nifti_folder(tmp_path / "pool")


@pytest.fixture
def real_acdc() -> Path:
    if not REAL_ACDC.is_dir() or not any(REAL_ACDC.glob("*.h5")):
        pytest.skip(f"real ACDC copy not found at {REAL_ACDC}")
    return REAL_ACDC


TINY_PRETRAIN = [
    "arch=resnet18",
    "crop=32",
    "batch_size=8",
    "epochs=2",
    "ckpt_every_steps=3",
    "log_every_steps=1",
    "heads.proj_hidden=64",
    "heads.proj_out=32",
    "heads.pred_hidden=64",
    "warmup_epochs=0.5",
    "runtime.num_workers=0",
    "runtime.precision=32-true",
    "runtime.accelerator=cpu",
]


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    src = builders.make_acdc(root / "src", n_patients=6, n_frames=4)
    return prepare_cache(src, root / "cache").path


TINY_FINETUNE = [
    "arch=resnet18",
    "crop=32",
    "batch_size=4",
    "steps=8",
    "val_every_steps=4",
    "ckpt_every_steps=4",
    "warmup_steps=2",
    "warmup_start_lr=0",
    "lr_interval=1",
    "best_every_steps=0",
    "decoder_channels=32,16,16,8,8",
    "runtime.num_workers=0",
    "runtime.precision=32-true",
    "runtime.accelerator=cpu",
]


def tiny_pretrain_config(cache: Path, out: Path, *extra: str):
    """The tiny BYOL run's config on ``cache`` writing to ``out``, plus overrides."""
    from medssl.configs import PRETRAIN_PRESETS, PretrainConfig, preset

    sets = [f"data={cache}", f"out={out}", *TINY_PRETRAIN, *extra]
    return preset(PretrainConfig, PRETRAIN_PRESETS, "paper", sets)


#: small settings of the non-BYOL objectives for the tiny runs
TINY_METHOD = [
    "objective.queue_size=16",
    "objective.dino_prototypes=64",
    "objective.mask_patch=8",
    "objective.decoder_channels=32,16,16,8,8",
]


def tiny_method_config(cache: Path, out: Path, method: str, *extra: str):
    """The tiny run of ``method`` (its recipe on the ``paper`` preset), plus overrides."""
    from medssl.configs import pretrain_preset

    sets = [f"data={cache}", f"out={out}", *TINY_PRETRAIN, *TINY_METHOD, *extra]
    return pretrain_preset("paper", method, sets)


def tiny_finetune_config(cache: Path, out: Path, *extra: str):
    """The tiny fine-tuning run's config on ``cache`` writing to ``out``, plus overrides."""
    from medssl.configs import FINETUNE_PRESETS, FinetuneConfig, preset

    sets = [f"data={cache}", f"out={out}", *TINY_FINETUNE, *extra]
    return preset(FinetuneConfig, FINETUNE_PRESETS, "paper", sets)


@pytest.fixture(scope="session")
def tiny_finetuned(tiny_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny fine-tuning run (shared by evaluation and prediction tests)."""
    from medssl.training.finetune import finetune

    out = tmp_path_factory.mktemp("ft") / "run"
    finetune(tiny_finetune_config(tiny_cache, out), progress=False)
    return out
