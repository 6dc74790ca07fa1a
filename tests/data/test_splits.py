"""Split and label-budget invariants."""

from __future__ import annotations

from pathlib import Path

import pytest

from medssl.data.cache_read import SliceCache
from medssl.data.cache_write import prepare_cache
from medssl.data.splits import (
    Split,
    budget_patients,
    budget_slices,
    labelled_slices,
    make_split,
    unlabelled_pool,
)
from tests import builders


@pytest.fixture
def cache(tmp_path: Path) -> SliceCache:
    root = builders.make_acdc(tmp_path / "src", n_patients=13, n_frames=4, es=2)
    return SliceCache.open(prepare_cache(root, tmp_path / "cache").path)


def test_acdc_study_split_of_100_patients() -> None:
    ids = [f"patient{i:03d}" for i in range(1, 101)]
    split = make_split(ids)
    assert split.scheme == "acdc-study"
    assert split.test == tuple(f"patient{i:03d}" for i in range(1, 100, 10))
    assert split.val == tuple(f"patient{i:03d}" for i in range(2, 100, 10))
    assert len(split.train) == 80


@pytest.mark.parametrize("n", [3, 10, 57])
def test_random_split_disjoint_complete_deterministic(n: int) -> None:
    ids = [f"case{i}" for i in range(n)]
    split = make_split(ids, seed=3)
    parts = [set(split.train), set(split.val), set(split.test)]
    assert set().union(*parts) == set(ids)
    assert sum(map(len, parts)) == n
    assert all(p for p in parts)
    assert make_split(list(reversed(ids)), seed=3) == split
    if n > 3:
        assert make_split(ids, seed=4) != split


def test_split_json_round_trip(tmp_path: Path) -> None:
    split = make_split([f"c{i}" for i in range(20)], seed=1)
    split.save(tmp_path / "s.json")
    assert Split.load(tmp_path / "s.json") == split


def test_slice_budgets_nested_deterministic_training_only(cache: SliceCache) -> None:
    split = make_split([v.patient for v in cache.volumes])
    full = labelled_slices(cache, split.train)
    train_patients = set(split.train)
    prev: list[int] = []
    for n in (1, 3, 7, 15, len(full)):
        b = budget_slices(cache, split, n, seed=42)
        assert len(b) == n == len(set(b))
        assert set(prev) <= set(b)
        assert all(cache.volume_of(i).patient in train_patients for i in b)
        assert all(cache.volume_of(i).labelled for i in b)
        prev = b
    assert budget_slices(cache, split, 7, seed=42) == budget_slices(cache, split, 7, seed=42)
    assert budget_slices(cache, split, 7, seed=42) != budget_slices(cache, split, 7, seed=13)
    with pytest.raises(ValueError, match="budget"):
        budget_slices(cache, split, len(full) + 1, seed=0)


def test_budget_independent_of_cache_config(tmp_path: Path, cache: SliceCache) -> None:
    """The same seed gives the same slices whatever preprocessing (pipelines share it)."""
    from medssl.data.preprocess import PrepareConfig

    root = Path(cache.manifest["source_root"])
    other = SliceCache.open(
        prepare_cache(
            root, tmp_path / "other", PrepareConfig(norm="minmax", include_series=False)
        ).path
    )
    split = make_split([v.patient for v in cache.volumes])

    def keys(c: SliceCache, idx: list[int]) -> list[tuple]:
        return [
            (c.volume_of(i).patient, c.volume_of(i).frame, int(c.index["slice"][i])) for i in idx
        ]

    assert keys(cache, budget_slices(cache, split, 9, 5)) == keys(
        other, budget_slices(other, split, 9, 5)
    )


def test_patient_budgets_nested_with_both_phases(cache: SliceCache) -> None:
    split = make_split([v.patient for v in cache.volumes])
    prev: set[int] = set()
    for n in (1, 2, 5):
        b = budget_patients(cache, split, n, seed=0)
        pats = {cache.volume_of(i).patient for i in b}
        assert len(pats) == n
        phases = {(cache.volume_of(i).patient, cache.volume_of(i).phase) for i in b}
        assert len(phases) == 2 * n
        assert prev <= set(b)
        prev = set(b)


def test_unlabelled_pool_is_training_cine_frames(cache: SliceCache) -> None:
    split = make_split([v.patient for v in cache.volumes])
    pool = unlabelled_pool(cache, split.train)
    vols = {cache.volume_of(i).patient for i in pool}
    assert vols == set(split.train)
    assert all(cache.volume_of(i).from_series for i in pool)
    assert len(pool) == len(split.train) * 4 * builders.SHAPE[0]


def test_unlabelled_pool_falls_back_to_labelled_images(tmp_path: Path) -> None:
    root = builders.make_h5(tmp_path / "h5", n_patients=12)
    cache = SliceCache.open(prepare_cache(root, tmp_path / "c").path)
    split = make_split([v.patient for v in cache.volumes])
    pool = unlabelled_pool(cache, split.train)
    assert len(pool) == len(split.train) * 2 * builders.SHAPE[0]
    assert not {cache.volume_of(i).patient for i in pool} & (set(split.val) | set(split.test))
