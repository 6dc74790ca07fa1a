"""Real-data checks on ../shared/acdc (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medssl.cli import main
from medssl.data.cache_read import SliceCache
from medssl.data.cache_write import prepare_cache
from medssl.data.splits import budget_slices, split_for_cache, unlabelled_pool

pytestmark = pytest.mark.realdata


def test_data_check_real_acdc(real_acdc: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["data", "check", str(real_acdc)]) == 0
    out = capsys.readouterr().out
    rows = dict(
        line.split(None, 1) if "  " not in line else line.split("  ", 1)
        for line in out.splitlines()
        if line and not line.startswith("PROBLEM")
    )
    assert rows["patients"].strip() == "100"
    assert rows["labelled volumes"].strip() == "200"
    assert rows["labelled slices"].strip() == "1902"
    assert "PROBLEM" not in out


def test_prepare_and_split_real_acdc(real_acdc: Path, tmp_path: Path) -> None:
    cache = SliceCache.open(prepare_cache(real_acdc, tmp_path / "cache").path)
    assert len(cache) == 1902
    split = split_for_cache(cache)
    assert split.scheme == "acdc-study"
    assert (len(split.train), len(split.val), len(split.test)) == (80, 10, 10)
    full = budget_slices(cache, split, None, seed=0)
    assert 1400 < len(full) < 1600  # the study's ≈1500 training slices
    assert len(unlabelled_pool(cache, split.train)) == len(full)
