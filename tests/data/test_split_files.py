"""User-defined split files (medssl and nnU-Net forms) and explicit labelled sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medssl.artifacts.split import Split
from medssl.data.cache_read import SliceCache
from medssl.data.split_files import read_labelled_file, read_split_file, resolve_labelled
from medssl.data.splits import labelled_keys, split_for_cache
from medssl.errors import DataError

PATIENTS = [f"patient{i:03d}" for i in range(1, 11)]


def _write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


def test_medssl_split_file_round_trips(tmp_path: Path) -> None:
    split = Split(tuple(PATIENTS[3:]), tuple(PATIENTS[1:3]), (PATIENTS[0],), "acdc-study")
    split.save(tmp_path / "split.json")
    back = read_split_file(tmp_path / "split.json", PATIENTS)
    assert (back.train, back.val, back.test) == (split.train, split.val, split.test)
    assert back.scheme == "file"


def test_missing_test_key_takes_the_remaining_patients(tmp_path: Path) -> None:
    f = _write(tmp_path / "s.json", {"train": PATIENTS[:6], "val": PATIENTS[6:8]})
    split = read_split_file(f, PATIENTS)
    assert split.test == tuple(PATIENTS[8:])


def test_official_test_patients_stay_held_out(tmp_path: Path) -> None:
    f = _write(tmp_path / "s.json", {"train": PATIENTS[:6], "val": PATIENTS[6:8]})
    split = read_split_file(f, [*PATIENTS, "patient101"], official_test=["patient101"])
    assert split.official_test == ("patient101",)
    assert "patient101" not in split.test


def test_nnunet_splits_final_maps_case_names_to_patients(tmp_path: Path) -> None:
    folds = [
        {
            "train": [f"{p}_frame{f:02d}" for p in PATIENTS[k * 2 + 2 :] for f in (1, 12)],
            "val": [f"{p}_frame01" for p in PATIENTS[k * 2 : k * 2 + 2]],
        }
        for k in range(2)
    ]
    f = _write(tmp_path / "splits_final.json", folds)
    split = read_split_file(f, PATIENTS, fold=1)
    assert split.val == ("patient003", "patient004")
    assert split.train == tuple(PATIENTS[4:])
    assert split.test == ("patient001", "patient002")  # in neither train nor val of fold 1
    assert split.scheme == "nnunet-fold-1"
    assert read_split_file(f, PATIENTS).val == ("patient001", "patient002")  # fold 0


@pytest.mark.parametrize(
    ("content", "fold", "check", "words"),
    [
        ({"train": ["patient001", "nobody"], "val": []}, None, "unknown-id", "'nobody'"),
        ({"train": PATIENTS[:5], "val": PATIENTS[4:6]}, None, "split-overlap", "patient005"),
        ({"train": PATIENTS[:5], "test": PATIENTS[5:]}, None, "split-file", "val"),
        ({"train": [], "val": PATIENTS[:2]}, None, "split-file", "empty"),
        ({"train": PATIENTS[:5], "val": [], "folds": 3}, None, "split-file", "folds"),
        ({"train": PATIENTS[:5], "val": []}, 2, "fold", "fold 2"),
        ([{"train": PATIENTS[:5], "val": PATIENTS[5:]}], 1, "fold", "0..0"),
        ([{"train": PATIENTS[:5]}], 0, "split-file", "fold 0"),
        ("just a string", None, "split-file", "expected"),
    ],
)
def test_bad_split_files_fail_with_one_line_naming_the_file(
    tmp_path: Path, content, fold, check: str, words: str
) -> None:
    f = _write(tmp_path / "bad_split.json", content)
    with pytest.raises(DataError) as err:
        read_split_file(f, PATIENTS, fold)
    msg = str(err.value)
    assert err.value.check == check
    assert str(f) in msg and words in msg and "\n" not in msg


def test_unreadable_split_file(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text("{not json")
    with pytest.raises(DataError, match="not readable as JSON"):
        read_split_file(tmp_path / "s.json", PATIENTS)
    with pytest.raises(DataError, match="file not found"):
        read_split_file(tmp_path / "missing.json", PATIENTS)


def test_labelled_file_forms(tmp_path: Path) -> None:
    assert read_labelled_file(_write(tmp_path / "a.json", ["patient003"])) == (
        "patients",
        ["patient003"],
    )
    kind, entries = read_labelled_file(
        _write(tmp_path / "b.json", {"slices": [["patient003", None, 2], ["patient004", 1, 0]]})
    )
    assert kind == "slices" and entries == [("patient003", -1, 2), ("patient004", 1, 0)]
    for bad, check in [
        (["patient003", "patient003"], "duplicate"),
        ({"patients": ["a"], "slices": []}, "labelled-file"),
        ([["patient003", 1]], "labelled-file"),
        ([], "labelled-file"),
    ]:
        with pytest.raises(DataError) as err:
            read_labelled_file(_write(tmp_path / "bad.json", bad))
        assert err.value.check == check and "bad.json" in str(err.value)


@pytest.fixture
def cache(tiny_cache: Path) -> SliceCache:
    return SliceCache.open(tiny_cache)


def test_labelled_patients_give_all_their_labelled_slices(cache: SliceCache, tmp_path) -> None:
    split = split_for_cache(cache)
    keys = labelled_keys(cache)
    f = _write(tmp_path / "l.json", {"patients": [split.train[0]]})
    got = resolve_labelled(f, keys, split)
    want = sorted(i for k, i in keys.items() if k[0] == split.train[0])
    assert sorted(got) == want and len(got) > 0


def test_labelled_triples_give_exactly_those_slices(cache: SliceCache, tmp_path) -> None:
    split = split_for_cache(cache)
    keys = labelled_keys(cache)
    chosen = [k for k in sorted(keys) if k[0] in split.train][::5][:3]
    f = _write(tmp_path / "l.json", [list(k) for k in chosen])
    assert resolve_labelled(f, keys, split) == [keys[k] for k in chosen]


@pytest.mark.parametrize(
    ("entries", "check"),
    [
        (["patient001"], "labelled-outside-train"),  # patient001 is the test patient
        (["patient999"], "unknown-id"),
        ([["patient003", 77, 0]], "unknown-slice"),
    ],
)
def test_bad_labelled_sets(cache: SliceCache, tmp_path: Path, entries, check: str) -> None:
    split = split_for_cache(cache)
    f = _write(tmp_path / "labelled.json", entries)
    with pytest.raises(DataError) as err:
        resolve_labelled(f, labelled_keys(cache), split)
    assert err.value.check == check and str(f) in str(err.value)


def test_split_for_cache_reads_a_file_against_the_cache(cache: SliceCache, tmp_path) -> None:
    f = _write(
        tmp_path / "s.json",
        {"train": ["patient001", "patient002", "patient003"], "val": ["patient004"]},
    )
    split = split_for_cache(cache, file=f)
    assert split.test == ("patient005", "patient006")
    with pytest.raises(ValueError, match="not both"):
        split_for_cache(cache, seed=1, file=f)
