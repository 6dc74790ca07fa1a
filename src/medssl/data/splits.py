"""Patient-level splits and nested label budgets, saved as JSON.

Default split for ACDC-style ids (``patientNNN``): the study's split, test patients
1, 11, …, 91 (``N % 10 == 1``), validation 2, 12, …, 92 (``N % 10 == 2``), training
the rest — the rule of the original code (``TEST_PATIENTS`` / ``VAL_PATIENTS`` in
``data/acdc_dataset.py`` of kaland313/SSL-MedSeg). Other ids get a seeded 80/10/10 split.

The study's split is computed over the official ``training/`` patients (001–100) only.
Patients of the official ``testing/`` folder (101–150) go to a separate split,
``official-test``: never in train, val or test, never in a label budget or in the
unlabelled pretraining pool (those draw from ``train`` only). ``medssl evaluate
--split official-test`` scores a run on them.

Label budgets are drawn from a seeded permutation of the training patients' labelled
slices (or of the training patients), keyed by ``(patient, frame, slice)`` rather than
by cache position. A budget is a prefix of that permutation, so for one seed a smaller
budget is a subset of a larger one, and every pipeline fine-tuned with that seed sees
exactly the same labelled slices.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import numpy as np

from medssl.artifacts.atomic import write_json
from medssl.artifacts.split import OFFICIAL_TEST, SPLIT_NAMES, Split  # noqa: F401 (re-export)
from medssl.data.cache_read import SliceCache
from medssl.overrides import ConfigError

_ACDC_ID = re.compile(r"^patient(\d+)$")


def make_split(
    patients: list[str],
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    scheme: Literal["auto", "acdc-study", "random"] = "auto",
    official_test: list[str] | tuple[str, ...] = (),
) -> Split:
    """Split patient ids (see the module docstring for the rules).

    Args:
        patients: all patient ids (may include the ``official_test`` ones).
        seed: seed of a random split.
        fractions: train/val/test fractions of a random split.
        scheme: ``acdc-study``, ``random`` or ``auto`` (the study's rule when every id
            is ``patientNNN``).
        official_test: ids of an official held-out set; they are removed before the
            split is computed and returned as ``Split.official_test``.
    """
    held_out = tuple(sorted(set(official_test)))
    if not held_out:
        return _make_split(patients, seed, fractions, scheme)
    kept = [p for p in patients if p not in set(held_out)]
    split = _make_split(kept, seed, fractions, scheme)
    return Split(split.train, split.val, split.test, split.scheme, split.seed, held_out)


def _make_split(
    patients: list[str],
    seed: int,
    fractions: tuple[float, float, float],
    scheme: Literal["auto", "acdc-study", "random"],
) -> Split:
    ids = sorted(set(patients))
    numbers = [_ACDC_ID.match(p) for p in ids]
    if scheme == "acdc-study" or (scheme == "auto" and ids and all(numbers)):
        n = {p: int(m.group(1)) for p, m in zip(ids, numbers, strict=True) if m}
        test = tuple(p for p in ids if n[p] % 10 == 1)
        val = tuple(p for p in ids if n[p] % 10 == 2)
        train = tuple(p for p in ids if p not in test and p not in val)
        return Split(train, val, test, "acdc-study")
    order = np.random.default_rng(seed).permutation(len(ids))
    n_test = max(1, round(fractions[2] * len(ids))) if len(ids) >= 3 else 0
    n_val = max(1, round(fractions[1] * len(ids))) if len(ids) >= 3 else 0
    shuffled = [ids[i] for i in order]
    test = tuple(sorted(shuffled[:n_test]))
    val = tuple(sorted(shuffled[n_test : n_test + n_val]))
    train = tuple(sorted(shuffled[n_test + n_val :]))
    return Split(train, val, test, "random", seed)


def official_test_patients(cache: SliceCache) -> tuple[str, ...]:
    """Patients of an ACDC cache read from the official ``testing/`` folder.

    A patient counts when every one of its volumes comes from
    ``testing/<patient>/`` under the source root (the paths the cache stores are
    relative to that root). Other formats have no official test folder: ``()``.
    """
    from medssl.data.readers.acdc import OFFICIAL_TEST_DIR

    if cache.manifest.get("format") != "acdc":
        return ()
    origin: dict[str, set[bool]] = {}
    for v in cache.volumes:
        first = Path(v.sources[0]).parts[0] if v.sources else ""
        origin.setdefault(v.patient, set()).add(first == OFFICIAL_TEST_DIR)
    return tuple(sorted(p for p, flags in origin.items() if flags == {True}))


def split_for_cache(
    cache: SliceCache,
    seed: int | None = None,
    file: str | Path | None = None,
    fold: int | None = None,
) -> Split:
    """The patient split a run uses.

    ``file``: a user's split file (medssl ``split.json`` or nnU-Net ``splits_final.json``
    with ``fold``; :func:`medssl.data.split_files.read_split_file`), checked against the
    cache's patients. Else ``seed=None``: the split written into the cache by ``medssl data
    prepare`` (caches prepared before the split lived there: the default split with seed
    0); an int: the default split drawn with that seed.
    """
    if file is not None:
        from medssl.data.split_files import read_split_file

        if seed is not None:
            raise ValueError("give a split file or a split seed, not both")
        patients = [v.patient for v in cache.volumes]
        return read_split_file(file, patients, fold, official_test_patients(cache))
    if seed is None:
        stored = cache.manifest.get("split")
        return Split.from_dict(stored) if stored is not None else default_split(cache, 0)
    return default_split(cache, seed)


def run_split(cache: SliceCache, cfg) -> Split:
    """The split of a run config (``split``/``split_fold``, else ``split_seed``; see
    :func:`split_for_cache`)."""
    if cfg.split is not None and cfg.split_seed is not None:
        raise ConfigError("give split (a file) or split_seed, not both")
    return split_for_cache(cache, cfg.split_seed, cfg.split, cfg.split_fold)


def default_split(cache: SliceCache, seed: int = 0) -> Split:
    """Default split of the patients in a cache.

    For an ACDC cache with the official layout the study's split is computed over the
    ``training/`` patients only; ``testing/`` patients form ``official-test``.
    """
    return make_split(
        [v.patient for v in cache.volumes], seed, official_test=official_test_patients(cache)
    )


def _slice_key(cache: SliceCache, i: int) -> tuple[str, int, int]:
    v = cache.volume_of(i)
    return (v.patient, v.frame if v.frame is not None else -1, int(cache.index["slice"][i]))


def labelled_keys(cache: SliceCache) -> dict[tuple[str, int, int], int]:
    """``(patient, frame, slice) -> index`` of every labelled slice (frame -1: none)."""
    return {
        _slice_key(cache, i): i
        for v in cache.volumes
        if v.labelled
        for i in range(v.first_slice, v.first_slice + v.n_slices)
    }


def labelled_slices(cache: SliceCache, patients: tuple[str, ...] | list[str]) -> list[int]:
    """Indices of labelled slices of ``patients``, in key order."""
    keep = set(patients)
    idx = [
        i
        for v in cache.volumes
        if v.labelled and v.patient in keep
        for i in range(v.first_slice, v.first_slice + v.n_slices)
    ]
    return sorted(idx, key=lambda i: _slice_key(cache, i))


def budget_slices(cache: SliceCache, split: Split, n: int | None, seed: int) -> list[int]:
    """The first ``n`` slices of the seeded permutation of all training labelled slices.

    ``n=None`` returns the full set. Raises ``ValueError`` when ``n`` exceeds it.
    """
    pool = labelled_slices(cache, split.train)
    if n is not None and not 0 < n <= len(pool):
        raise ValueError(f"slice budget {n} outside 1..{len(pool)} labelled training slices")
    order = np.random.default_rng(seed).permutation(len(pool))
    return [pool[i] for i in order[: len(pool) if n is None else n]]


def budget_patients(cache: SliceCache, split: Split, n: int, seed: int) -> list[int]:
    """All labelled slices (ED and ES) of the first ``n`` patients of a seeded permutation."""
    if not 0 < n <= len(split.train):
        raise ValueError(f"patient budget {n} outside 1..{len(split.train)} training patients")
    order = np.random.default_rng(seed).permutation(len(split.train))
    chosen = [sorted(split.train)[i] for i in order[:n]]
    return labelled_slices(cache, chosen)


def unlabelled_pool(cache: SliceCache, patients: tuple[str, ...] | list[str]) -> list[int]:
    """Slices for self-supervised pretraining: every cine frame of ``patients``.

    Patients without a cine series contribute their labelled volumes' images instead
    (labels unused), so h5 copies without 4D files still have a pool.
    """
    keep = set(patients)
    with_series = {v.patient for v in cache.volumes if v.from_series}
    out: list[int] = []
    for v in cache.volumes:
        if v.patient in keep and (v.from_series or v.patient not in with_series):
            out.extend(range(v.first_slice, v.first_slice + v.n_slices))
    return out


def budget_record(cache: SliceCache, indices: list[int], **info) -> dict:
    """A budget as saved in ``budget.json``: its parameters and ``(patient, frame, slice)``
    keys."""
    keys = [list(_slice_key(cache, i)) for i in indices]
    return {**info, "n": len(indices), "slices": keys}


def save_budget(path: str | Path, cache: SliceCache, indices: list[int], **info) -> None:
    """Write :func:`budget_record` to ``path`` (atomically)."""
    write_json(path, budget_record(cache, indices, **info), indent=0)
