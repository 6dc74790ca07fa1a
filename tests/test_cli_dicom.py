"""A folder of DICOM cine files through every command: check, prepare, pretrain,
fine-tune, predict. The DICOM-SEG that ``predict`` writes reads back with highdicom and
with plain pydicom, its masks equal to the same run's prediction on the phantom's NIfTI
cine; the headers' names, dates and institution reach no cache, run directory or log."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest

from medssl.cli import main
from medssl.data.nifti import to_slices
from tests.conftest import TINY_FINETUNE, TINY_PRETRAIN
from tests.data.dicom_builders import phantom_dicom
from tests.data.test_dicom_patient import MARKERS, META_TAGS
from tests.test_cli import _summary

PATIENTS = (1, 2, 3, 4)
LABELS_JSON = {"background": 0, "RV": 1, "MYO": 2, "LV": 3}


def _sets(values: list[str]) -> list[str]:
    return [a for s in values for a in ("--set", s)]


def _dicom_cine(root: Path) -> tuple[Path, Path]:
    """``(NIfTI phantom root, DICOM root)``: 4 patients' 2-phase cine as single-frame
    DICOM with identifying headers, each labelled by its ED/ES truth beside it."""
    nifti, dicom = phantom_dicom(root, PATIENTS, n_frames=2, tags={**META_TAGS, **MARKERS})
    for p in PATIENTS:
        pid = f"patient{p:03d}"
        for gt in (nifti / "training" / pid).glob("*_gt.nii.gz"):
            shutil.copy(gt, dicom / pid / gt.name)
    (dicom / "labels.json").write_text(json.dumps(LABELS_JSON))
    return nifti, dicom


def _pydicom_label_map(path: Path, uids: list[str]) -> np.ndarray:
    """The SEG's label map on the source images ``uids`` (slice order), decoded with
    pydicom alone: each frame's segment number and referenced source image."""
    ds = pydicom.dcmread(path)
    assert ds.Modality == "SEG" and ds.SegmentationType == "BINARY"
    frames = ds.pixel_array.reshape(int(ds.NumberOfFrames), ds.Rows, ds.Columns)
    out = np.zeros((len(uids), ds.Rows, ds.Columns), np.uint8)
    for frame, item in zip(frames, ds.PerFrameFunctionalGroupsSequence, strict=True):
        number = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        source = item.DerivationImageSequence[0].SourceImageSequence[0]
        k = uids.index(source.ReferencedSOPInstanceUID)
        assert not (out[k] & frame.astype(bool)).any()  # BINARY segments do not overlap here
        out[k][frame.astype(bool)] = number
    return out


@pytest.mark.slow
def test_dicom_cine_check_prepare_pretrain_finetune_predict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    nifti, dicom = _dicom_cine(tmp_path / "src")
    work = tmp_path / "work"
    cache, pre, ft = work / "cache", work / "pre", work / "ft"

    assert main(["data", "check", str(dicom)]) == 0
    rows = _summary(capsys.readouterr().out)
    assert rows["source"].endswith("(dicom)") and rows["problems"] == "0"
    assert (rows["patients"], rows["labelled volumes"], rows["4D frames"]) == ("4", "8", "8")
    assert rows["patient metadata"].endswith("sex F 4")

    assert main(["data", "prepare", str(dicom), "--out", str(cache)]) == 0
    args = ["pretrain", "--preset", "cpu-small", "--data", str(cache), "--out", str(pre)]
    assert main([*args, *_sets([*TINY_PRETRAIN, "max_steps=2"])]) == 0
    args = ["finetune", "--data", str(cache), "--out", str(ft)]
    args += ["--init", str(pre / "encoder_last.safetensors")]
    assert main([*args, *_sets([*TINY_FINETUNE, "steps=2"])]) == 0

    seg_out = tmp_path / "seg"
    predict = ["predict", "--model", str(ft), "--no-overlays"]
    assert main([*predict, "--input", str(dicom / "patient001"), "--out", str(seg_out)]) == 0
    names = sorted(p.name for p in seg_out.glob("*.seg.dcm"))
    assert names == ["patient001_series100_frame01.seg.dcm", "patient001_series100_frame02.seg.dcm"]
    cine = nifti / "training" / "patient001" / "patient001_4d.nii.gz"
    assert main([*predict, "--input", str(cine), "--out", str(tmp_path / "nii")]) == 0
    expected = np.asanyarray(nib.load(tmp_path / "nii" / "patient001_4d.nii.gz").dataobj)

    images = [
        pydicom.dcmread(p, stop_before_pixels=True) for p in (dicom / "patient001").glob("*.dcm")
    ]
    for t, name in enumerate(names):
        phase = [ds for ds in images if float(ds.TriggerTime) == t * 40.0]
        normal = np.cross(*np.reshape(np.asarray(phase[0].ImageOrientationPatient, float), (2, 3)))
        phase.sort(key=lambda ds: float(np.dot(np.asarray(ds.ImagePositionPatient, float), normal)))
        uids = [str(ds.SOPInstanceUID) for ds in phase]
        pred = to_slices(expected[..., t])
        seg = hd.seg.segread(seg_out / name)
        assert seg.PatientID == "patient001" and seg.StudyInstanceUID == phase[0].StudyInstanceUID
        back = seg.get_pixels_by_source_instance(uids, combine_segments=True)
        np.testing.assert_array_equal(back, pred)
        np.testing.assert_array_equal(_pydicom_label_map(seg_out / name, uids), pred)

    captured = capsys.readouterr()
    text = caplog.text + captured.out + captured.err
    written = [p for p in work.rglob("*") if p.is_file()]
    assert any(p.name == "volumes.json" for p in written) and any(
        p.name == "config.yaml" for p in written
    )
    for marker in MARKERS.values():
        for variant in {marker, *marker.split("^")}:
            assert variant not in text, f"{variant!r} in logs/output"
            leaked = [p for p in written if variant.encode() in p.read_bytes()]
            assert not leaked, f"{variant!r} written to {leaked}"
