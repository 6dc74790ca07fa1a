"""Shared fixtures: tiny sources built on the fly, and the real ACDC copy when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import builders

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
