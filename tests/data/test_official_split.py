"""The study's split over the official ``training/`` patients; ``testing/`` kept apart.

The official ACDC download has ``training/patient001..100`` and ``testing/patient101..150``.
The study (kaland313/SSL-MedSeg ``data/acdc_dataset.py``) splits the 100 training
patients: test 1, 11, …, 91, validation 2, 12, …, 92, training the other 80. Patients
of ``testing/`` go to ``official-test`` and never into train/val/test, a label budget
or the unlabelled pretraining pool.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from medssl.cli import main
from medssl.data.cache_read import SliceCache
from medssl.data.cache_write import prepare_cache
from medssl.data.nifti import from_slices
from medssl.data.splits import (
    OFFICIAL_TEST,
    Split,
    budget_patients,
    budget_slices,
    make_split,
    official_test_patients,
    split_for_cache,
    unlabelled_pool,
)
from tests import builders

N_TRAIN = 12  # patient001..012: test 001, 011; val 002, 012
TEST_IDS = (101, 102, 103)
REAL_ACDC_NIFTI = Path(__file__).resolve().parents[2].parent / "shared" / "acdc-nifti"


def make_official_layout(root: Path, n_frames: int = 3) -> Path:
    """``training/patient001..012`` (with cine series) and ``testing/patient101..103``.

    Test patients' ``Info.cfg`` has no ``Group`` (allowed for ``testing/``); patient101
    also has a 4D series, to check it stays out of the unlabelled pool.
    """
    builders.make_acdc(root, n_patients=N_TRAIN, n_frames=n_frames, es=2, series=True)
    for p in TEST_IDS:
        pid = f"patient{p:03d}"
        pdir = root / "testing" / pid
        pdir.mkdir(parents=True)
        (pdir / "Info.cfg").write_text(
            f"ED: 1\nES: 2\nHeight: 170.0\nNbFrame: {n_frames}\nWeight: 70.0\n"
        )
        for frame in (1, 2):
            builders.write_pair(
                pdir / f"{pid}_frame{frame:02d}.nii.gz",
                pdir / f"{pid}_frame{frame:02d}_gt.nii.gz",
                seed=p * 100 + frame,
            )
        if p == TEST_IDS[0]:
            frames = [builders.make_volume(p * 100 + t + 1)[0] for t in range(n_frames)]
            data = np.stack([from_slices(f) for f in frames], axis=-1)
            builders.write_nifti(
                pdir / f"{pid}_4d.nii.gz", data, builders.affine_for(), dtype=np.int16
            )
    return root


@pytest.fixture(scope="module")
def official(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SliceCache]:
    root = tmp_path_factory.mktemp("official")
    src = make_official_layout(root / "src")
    return src, SliceCache.open(prepare_cache(src, root / "cache").path)


def _number(pid: str) -> int:
    return int(re.fullmatch(r"patient(\d+)", pid).group(1))


def test_testing_patients_only_in_official_test(official) -> None:
    _, cache = official
    split = split_for_cache(cache)
    testing = {f"patient{p:03d}" for p in TEST_IDS}
    assert set(official_test_patients(cache)) == testing
    assert set(split.official_test) == set(split.of(OFFICIAL_TEST)) == testing
    for name in ("train", "val", "test"):
        assert not testing & set(split.of(name)), name
    everyone = {v.patient for v in cache.volumes}
    assert everyone == set(split.train) | set(split.val) | set(split.test) | testing


def test_study_rule_over_training_patients_only(official) -> None:
    _, cache = official
    split = split_for_cache(cache)
    assert split.scheme == "acdc-study"
    training = [f"patient{p:03d}" for p in range(1, N_TRAIN + 1)]
    assert split.test == tuple(p for p in training if _number(p) % 10 == 1)
    assert split.val == tuple(p for p in training if _number(p) % 10 == 2)
    assert split.test == ("patient001", "patient011")
    assert split.val == ("patient002", "patient012")
    assert len(split.train) == N_TRAIN - 4
    # 101 would be a "test" patient by the N % 10 rule, were it not held out
    assert "patient101" not in split.test


def test_training_never_sees_official_test(official) -> None:
    _, cache = official
    split = split_for_cache(cache)
    held_out = set(split.official_test)
    patient_of = {i: cache.volume_of(i).patient for i in range(len(cache))}
    pool = unlabelled_pool(cache, split.train)
    assert pool and not {patient_of[i] for i in pool} & held_out
    full = budget_slices(cache, split, None, seed=0)
    assert not {patient_of[i] for i in full} & held_out
    some = budget_patients(cache, split, len(split.train), seed=0)
    assert not {patient_of[i] for i in some} & held_out
    # patient101's cine frames are in the cache but not in the pool
    series_101 = [i for i in range(len(cache)) if patient_of[i] == "patient101"]
    assert any(cache.volume_of(i).from_series for i in series_101)


def test_split_json_has_official_test_key_and_old_files_load(tmp_path: Path) -> None:
    ids = [f"patient{i:03d}" for i in range(1, 21)] + ["patient101", "patient150"]
    split = make_split(ids, official_test=["patient150", "patient101"])
    assert split.official_test == ("patient101", "patient150")
    assert len(split.train) + len(split.val) + len(split.test) == 20
    path = tmp_path / "split.json"
    split.save(path)
    raw = json.loads(path.read_text())
    assert raw[OFFICIAL_TEST] == ["patient101", "patient150"] and "official_test" not in raw
    assert Split.load(path) == split
    # a split.json from before official-test existed
    del raw[OFFICIAL_TEST]
    path.write_text(json.dumps(raw))
    old = Split.load(path)
    assert old.official_test == () and old.train == split.train
    with pytest.raises(KeyError):
        old.of("bogus")


def test_non_acdc_caches_have_no_official_test(tmp_path: Path) -> None:
    src = builders.make_h5(tmp_path / "h5", n_patients=3)
    cache = SliceCache.open(prepare_cache(src, tmp_path / "cache").path)
    assert official_test_patients(cache) == ()
    assert split_for_cache(cache).official_test == ()


def test_cli_prepare_prints_official_test(official, tmp_path: Path, capsys) -> None:
    src, _ = official
    assert main(["data", "prepare", str(src), "--out", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "split (acdc-study): 8 train / 2 val / 2 test / 3 official-test patients" in out
    saved = json.loads((tmp_path / "c" / "split.json").read_text())
    assert saved[OFFICIAL_TEST] == ["patient101", "patient102", "patient103"]


def test_evaluate_on_official_test(official, tiny_finetuned: Path, tmp_path: Path, capsys) -> None:
    """A trained run pointed at a cache with ``testing/`` patients scores exactly them."""
    from medssl.evaluation.evaluate import evaluate

    _, cache = official
    run = tmp_path / "run"
    shutil.copytree(tiny_finetuned, run)
    prep = json.loads((run / "prepare.json").read_text())
    prep["cache"] = str(cache.path)
    (run / "prepare.json").write_text(json.dumps(prep))
    split_for_cache(cache).save(run / "split.json")
    metrics = evaluate(run, OFFICIAL_TEST, overlays=0)
    assert metrics["split"] == OFFICIAL_TEST
    assert metrics["volumes"] == 2 * len(TEST_IDS)  # ED + ES of 101..103
    rows = (run / "per_case.csv").read_text().splitlines()[1:]
    assert {r.split(",")[0] for r in rows} == {f"patient{p:03d}" for p in TEST_IDS}
    assert 0 <= metrics["paper_iou"] <= 1 and "dice_3d" in metrics
    # an old split.json without the key: official-test comes from the cache
    raw = json.loads((run / "split.json").read_text())
    del raw[OFFICIAL_TEST]
    (run / "split.json").write_text(json.dumps(raw))
    assert main(["evaluate", str(run), "--split", OFFICIAL_TEST]) == 0
    out = capsys.readouterr().out
    assert f"{OFFICIAL_TEST}: {2 * len(TEST_IDS)} volumes" in out and "the study's 2D" in out


@pytest.mark.realdata  # about 8 s: not marked slow
def test_real_acdc_nifti_splits_80_10_10(tmp_path: Path, capsys) -> None:
    if not (REAL_ACDC_NIFTI / "training").is_dir():
        pytest.skip(f"official-layout ACDC copy not found at {REAL_ACDC_NIFTI}")
    assert main(["data", "prepare", str(REAL_ACDC_NIFTI), "--out", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "split (acdc-study): 80 train / 10 val / 10 test patients" in out
    split = Split.load(tmp_path / "c" / "split.json")
    assert (len(split.train), len(split.val), len(split.test)) == (80, 10, 10)
    assert split.official_test == ()
    assert split.test == tuple(f"patient{i:03d}" for i in range(1, 101, 10))
    assert split.val == tuple(f"patient{i:03d}" for i in range(2, 101, 10))
