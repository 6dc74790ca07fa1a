"""Labels of DICOM stacks: a DICOM-SEG written from the phantom's truth (by the writer
``medssl predict`` uses) or the truth's NIfTI beside the DICOM reads back as the same
label volume on the same phase, and labels that fit no phase are refused by name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest

from medssl.artifacts.labels import ACDC_LABELS, LabelSet
from medssl.cli import main
from medssl.data.cache_read import SliceCache
from medssl.data.cache_write import prepare_cache
from medssl.data.case import Case, Phase
from medssl.data.nifti import to_slices, write_nifti
from medssl.data.readers import detect_format, open_source
from medssl.errors import DataError
from medssl.evaluation.dicom_seg import write_dicom_seg
from tests.data.dicom_builders import phantom_dicom

PID = "patient001"
LABELS_JSON = {"background": 0, "RV": 1, "MYO": 2, "LV": 3}


@pytest.fixture(scope="module", params=[False, True], ids=["one-series", "series-per-slice"])
def phantom(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """``(patient folder of the NIfTI phantom, DICOM root)``: 3 phases, ED=1, ES=2."""
    root = tmp_path_factory.mktemp("labels")
    nifti, dicom = phantom_dicom(root, n_frames=3, series_per_slice=request.param)
    return nifti / "training" / PID, dicom


def _truth(patient: Path, frame: int) -> np.ndarray:
    path = patient / f"{PID}_frame{frame:02d}_gt.nii.gz"
    return to_slices(np.asanyarray(nib.load(path).dataobj))


def _copy(dicom: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(dicom, tmp_path / "dicom"))


def _phase_cases(root: Path) -> list[Case]:
    (series,) = [r for r in open_source(root).refs if r.kind == "series"]
    return list(series.load())


def _write_seg(root: Path, patient: Path, frame: int, labels: LabelSet = ACDC_LABELS) -> Path:
    case = _phase_cases(root)[frame - 1]
    path = root / f"frame{frame}.seg.dcm"
    return write_dicom_seg(path, case.sources, _truth(patient, frame), labels, hd.UID(), frame)


def _labelled(root: Path) -> dict[int | None, Case]:
    source = open_source(root)
    assert not source.problems, source.problems
    return {r.frame: c for r in source.refs if r.kind == "labelled" for c in r.load()}


def test_seg_reads_back_as_the_truth_on_its_phase(phantom, tmp_path: Path) -> None:
    patient, dicom = phantom
    root = _copy(dicom, tmp_path)
    for frame in (1, 2):
        _write_seg(root, patient, frame)
    source = open_source(root)
    assert source.format == "dicom" and source.labels == ACDC_LABELS  # names and roles
    assert sorted(r.kind for r in source.refs) == ["labelled", "labelled", "series"]
    phases = _phase_cases(root)
    labelled = _labelled(root)
    for frame, phase in ((1, Phase.ED), (2, Phase.ES)):
        case = labelled[frame]
        np.testing.assert_array_equal(case.label, _truth(patient, frame))
        np.testing.assert_array_equal(case.image, phases[frame - 1].image)
        np.testing.assert_allclose(case.affine, phases[frame - 1].affine)
        assert case.phase == phase and case.spacing == phases[0].spacing
    assert [c.frame for c in phases] == [1, 2, 3]  # every frame stays in the pool


def test_nifti_label_beside_the_dicom(phantom, tmp_path: Path) -> None:
    patient, dicom = phantom
    root = _copy(dicom, tmp_path)
    shutil.copy(patient / f"{PID}_frame02_gt.nii.gz", root / f"{PID}_frame02_gt.nii.gz")
    with pytest.raises(DataError, match=r"\[labels-json\] missing"):
        open_source(root)
    (root / "labels.json").write_text(json.dumps(LABELS_JSON))
    assert detect_format(root) == "dicom"
    (case,) = _labelled(root).values()
    assert case.frame == 2
    np.testing.assert_array_equal(case.label, _truth(patient, 2))


def _problem(root: Path) -> DataError:
    (problem,) = open_source(root).problems
    return problem


def test_labels_that_fit_no_phase_are_refused(phantom, tmp_path: Path) -> None:
    patient, dicom = phantom
    root = _copy(dicom, tmp_path)
    (root / "labels.json").write_text(json.dumps(LABELS_JSON))
    label = root / f"{PID}_frame01_gt.nii.gz"
    gt = nib.load(patient / label.name)
    shifted = gt.affine.copy()
    shifted[:3, 3] += 5.0
    write_nifti(label, np.asanyarray(gt.dataobj), shifted, dtype=np.uint8)
    err = _problem(root)
    assert (err.path, err.check) == (label, "no-matching-stack")
    label.unlink()

    seg = _write_seg(root, patient, 1)
    ds = pydicom.dcmread(seg)
    for series in ds.ReferencedSeriesSequence:
        for item in series.ReferencedInstanceSequence:
            item.ReferencedSOPInstanceUID = hd.UID()
    for frame in ds.PerFrameFunctionalGroupsSequence:
        for deriv in frame.get("DerivationImageSequence", []):
            for src in deriv.SourceImageSequence:
                src.ReferencedSOPInstanceUID = hd.UID()
    ds.save_as(seg)
    err = _problem(root)
    assert (err.path, err.check) == (seg, "seg-unmatched")


def test_seg_segments_must_be_declared(phantom, tmp_path: Path) -> None:
    patient, dicom = phantom
    root = _copy(dicom, tmp_path)
    seg = _write_seg(root, patient, 1)
    (root / "labels.json").write_text(json.dumps({"background": 0, "RV": 1}))
    err = _problem(root)
    assert (err.path, err.check) == (seg, "label-values")
    (root / "labels.json").unlink()
    twice = root / "z_copy.seg.dcm"  # sorts after the first: the later one is named
    shutil.copy(seg, twice)
    err = _problem(root)
    assert (err.path, err.check) == (twice, "duplicate-labels")


def test_check_and_prepare_take_the_labelled_phase(phantom, tmp_path: Path, capsys) -> None:
    patient, dicom = phantom
    root = _copy(dicom, tmp_path)
    _write_seg(root, patient, 1)
    assert main(["data", "check", str(root)]) == 0
    assert "PROBLEM" not in capsys.readouterr().out
    cache = SliceCache.open(prepare_cache(root, tmp_path / "cache").path)
    labelled = [v for v in cache.volumes if v.labelled]
    assert [(v.patient, v.frame) for v in labelled] == [(PID, 1)]
    assert sum(v.from_series for v in cache.volumes) == 3
