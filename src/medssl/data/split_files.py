"""User-defined splits and labelled sets, read from JSON files and checked against the data.

Researchers reuse the splits of the papers they compare with. Two split forms are read:

* medssl's ``split.json`` (what ``medssl data prepare`` writes and every run keeps)::

      {"train": ["patient003", ...], "val": [...], "test": [...]}

  ``test`` may be missing (then: every patient of the data in no other split);
  ``"official-test"`` is optional.
* nnU-Net's ``splits_final.json``: a list of folds ``[{"train": [...], "val": [...]}, ...]``
  plus a fold index. nnU-Net names cases, not patients: a case id that is not a patient id
  of the data is mapped to its patient by removing a ``_frameNN`` suffix (nnU-Net's ACDC
  conversion names cases ``patient001_frame01``). The test split is every patient of the
  data in neither ``train`` nor ``val`` of the fold (empty when the folds cover them all).

An explicit labelled set replaces a drawn budget. Its file holds patient ids (all their
labelled slices) or ``[patient, frame, slice]`` triples (``frame`` ``null`` or ``-1`` for
data without frames), as a bare list or under ``"patients"`` / ``"slices"``::

      ["patient003", "patient004"]
      {"slices": [["patient003", 1, 4], ["patient003", 12, 5]]}

Every check fails with one line that names the file: unknown ids, a patient in two
splits, a fold out of range, a labelled patient outside ``train``, a triple with no
labelled slice, duplicates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from medssl.artifacts.split import OFFICIAL_TEST, Split
from medssl.errors import DataError

_FRAME_SUFFIX = re.compile(r"^(?P<patient>.+)_frame\d+$")


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise DataError(path, what, "file not found") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(path, what, f"not readable as JSON ({exc})") from exc


def _patient_of(case: Any, patients: set[str], path: Path, where: str) -> str:
    """The data's patient id for a split entry (an id or an nnU-Net case name)."""
    if not isinstance(case, str):
        raise DataError(path, "split-file", f"{where}: ids must be strings, got {case!r}")
    if case in patients:
        return case
    m = _FRAME_SUFFIX.match(case)
    if m and m.group("patient") in patients:
        return m.group("patient")
    raise DataError(path, "unknown-id", f"{where}: {case!r} is not a patient of the data")


def _ids(value: Any, patients: set[str], path: Path, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise DataError(path, "split-file", f"'{where}' must be a list of ids")
    return tuple(sorted({_patient_of(v, patients, path, where) for v in value}))


def read_split_file(
    path: str | Path,
    patients: Iterable[str],
    fold: int | None = None,
    official_test: Sequence[str] = (),
) -> Split:
    """The split a file defines over ``patients`` (see the module docstring for the forms).

    Args:
        path: a medssl ``split.json`` or an nnU-Net ``splits_final.json``.
        patients: every patient id of the data.
        fold: fold of an nnU-Net file (default 0); must be ``None`` or 0 for a medssl file.
        official_test: the data's official held-out patients; those the file does not
            assign stay in ``official-test``.

    Raises:
        DataError: one line naming the file and the failed check.
    """
    path = Path(path)
    known = set(patients)
    raw = _read_json(path, "split-file")
    if isinstance(raw, list):
        scheme, parts = _nnunet_fold(raw, fold, known, path)
    elif isinstance(raw, dict):
        if fold not in (None, 0):
            raise DataError(path, "fold", f"fold {fold} given, but this is not a list of folds")
        missing = [k for k in ("train", "val") if k not in raw]
        if missing:
            raise DataError(path, "split-file", f"needs 'train' and 'val' (missing {missing})")
        unknown = sorted(set(raw) - {"train", "val", "test", OFFICIAL_TEST, "scheme", "seed"})
        if unknown:
            raise DataError(path, "split-file", f"unknown key(s) {unknown}")
        parts = {k: _ids(raw[k], known, path, k) for k in ("train", "val")}
        if "test" in raw:
            parts["test"] = _ids(raw["test"], known, path, "test")
        if OFFICIAL_TEST in raw:
            parts[OFFICIAL_TEST] = _ids(raw[OFFICIAL_TEST], known, path, OFFICIAL_TEST)
        scheme = "file"
    else:
        raise DataError(
            path, "split-file", "expected a {train, val, test} object or a list of folds"
        )
    _check_disjoint(parts, path)
    if not parts["train"]:
        raise DataError(path, "split-file", "the train split is empty")
    assigned = set().union(*parts.values())
    held_out = tuple(sorted(set(official_test) - assigned))
    if OFFICIAL_TEST in parts:
        held_out = parts[OFFICIAL_TEST]
    if "test" not in parts:
        parts["test"] = tuple(sorted(known - assigned - set(held_out)))
    return Split(parts["train"], parts["val"], parts["test"], scheme, None, held_out)


def _nnunet_fold(
    folds: list, fold: int | None, known: set[str], path: Path
) -> tuple[str, dict[str, tuple[str, ...]]]:
    k = 0 if fold is None else int(fold)
    if not folds:
        raise DataError(path, "split-file", "empty list of folds")
    if not 0 <= k < len(folds):
        raise DataError(path, "fold", f"fold {k} not in 0..{len(folds) - 1}")
    entry = folds[k]
    if not isinstance(entry, dict) or not {"train", "val"} <= set(entry):
        raise DataError(path, "split-file", f"fold {k} needs 'train' and 'val' lists")
    where = f"fold {k}"
    return f"nnunet-fold-{k}", {
        "train": _ids(entry["train"], known, path, f"{where} train"),
        "val": _ids(entry["val"], known, path, f"{where} val"),
    }


def _check_disjoint(parts: dict[str, tuple[str, ...]], path: Path) -> None:
    names = list(parts)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            both = sorted(set(parts[a]) & set(parts[b]))
            if both:
                more = f" (and {len(both) - 1} more)" if len(both) > 1 else ""
                raise DataError(
                    path, "split-overlap", f"patient {both[0]!r} is in both {a} and {b}{more}"
                )


def read_labelled_file(path: str | Path) -> tuple[str, list]:
    """``("patients", ids)`` or ``("slices", [(patient, frame, slice), ...])`` from a file.

    Raises:
        DataError: not one of the forms of the module docstring, or duplicate entries.
    """
    path = Path(path)
    raw = _read_json(path, "labelled-file")
    if isinstance(raw, dict):
        keys = set(raw) & {"patients", "slices"}
        if len(keys) != 1 or set(raw) - {"patients", "slices"}:
            raise DataError(
                path, "labelled-file", "an object needs exactly one key: patients or slices"
            )
        kind = keys.pop()
        raw = raw[kind]
    elif isinstance(raw, list):
        kind = "slices" if raw and all(isinstance(x, list) for x in raw) else "patients"
    else:
        raise DataError(path, "labelled-file", "expected a list of ids or of triples")
    if not isinstance(raw, list) or not raw:
        raise DataError(path, "labelled-file", f"'{kind}' must be a non-empty list")
    if kind == "patients":
        if not all(isinstance(x, str) for x in raw):
            raise DataError(path, "labelled-file", "patient ids must be strings")
        entries: list = list(raw)
    else:
        entries = [_triple(x, path) for x in raw]
    seen: set = set()
    for e in entries:
        if e in seen:
            raise DataError(path, "duplicate", f"{e!r} is listed twice")
        seen.add(e)
    return kind, entries


def _triple(x: Any, path: Path) -> tuple[str, int, int]:
    ok = (
        isinstance(x, list)
        and len(x) == 3
        and isinstance(x[0], str)
        and (x[1] is None or isinstance(x[1], int))
        and isinstance(x[2], int)
    )
    if not ok:
        raise DataError(
            path, "labelled-file", f"{x!r} is not a [patient, frame, slice] triple (ints)"
        )
    return (x[0], -1 if x[1] is None else x[1], x[2])


def resolve_labelled(
    path: str | Path,
    keys: dict[tuple[str, int, int], int],
    split: Split,
) -> list[int]:
    """Cache indices of the labelled set in ``path``.

    Args:
        path: the labelled-set file.
        keys: ``(patient, frame, slice) -> index`` of every labelled slice of the data.
        split: the run's split; every labelled patient must be in its ``train``.

    Raises:
        DataError: unknown patient, patient outside train, or a triple with no labelled
            slice; the message names the file.
    """
    path = Path(path)
    kind, entries = read_labelled_file(path)
    patients = {k[0] for k in keys} | set().union(
        split.train, split.val, split.test, split.official_test
    )
    train = set(split.train)
    for p in entries if kind == "patients" else [e[0] for e in entries]:
        if p not in patients:
            raise DataError(path, "unknown-id", f"{p!r} is not a patient of the data")
        if p not in train:
            where = next(
                (n for n in ("val", "test", OFFICIAL_TEST) if p in split.of(n)), "no split"
            )
            raise DataError(
                path, "labelled-outside-train", f"labelled patient {p!r} is in {where}, not train"
            )
    if kind == "patients":
        chosen = set(entries)
        out = [i for k, i in sorted(keys.items()) if k[0] in chosen]
        missing = sorted(chosen - {k[0] for k in keys})
        if missing:
            raise DataError(path, "no-labels", f"patient {missing[0]!r} has no labelled slice")
        return out
    out = []
    for e in entries:
        if e not in keys:
            raise DataError(path, "unknown-slice", f"no labelled slice {list(e)!r} in the data")
        out.append(keys[e])
    return out
