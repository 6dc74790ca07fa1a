"""Corrupt inputs never reach training: ``medssl pretrain``/``finetune`` pointed at a
broken source fail while preparing it, with one line naming the file and the check.

The full matrix of 150+ broken files (every reader, truncations at several cut points,
not-gzip, zero bytes, absurd headers, shape/spacing/affine mismatches, NaN/Inf, labels
4/255/−1/1.5, 4D/3D swaps, Info.cfg, missing frames, h5 without ``label``, nnU-Net
``dataset.json`` disagreeing with the files) is checked against ``data check`` and
``data prepare`` in ``tests/data/test_bad_inputs.py``; here one case of every
(reader, check) pair goes through the training entry points.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from medssl.cli import main
from tests.conftest import TINY_FINETUNE, TINY_PRETRAIN
from tests.data.test_bad_inputs import CASES, KEEP_CACHE_IDS, _break, _build


@pytest.mark.parametrize("name", KEEP_CACHE_IDS)
def test_training_refuses_corrupt_source(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("MEDSSL_CACHE_DIR", str(tmp_path / "caches"))
    root = _build(tmp_path, CASES[name].layout)
    named, check = _break(root, CASES[name])
    kind, sets = ("pretrain", TINY_PRETRAIN) if len(name) % 2 else ("finetune", TINY_FINETUNE)
    out = tmp_path / "run"
    argv = [kind, "--data", str(root), "--out", str(out)]
    argv += [a for item in sets for a in ("--set", item)]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    errors = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert errors and all(ln.startswith(f"error: {named}: [{check}] ") for ln in errors), err
    assert "Traceback" not in err
    assert not out.exists(), "a run directory was created for a broken source"


def test_enough_distinct_cases() -> None:
    assert len(CASES) >= 15 and len(KEEP_CACHE_IDS) >= 15
