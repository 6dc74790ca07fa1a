"""``medssl data convert SOURCE --to nnunet OUT``: every source becomes an nnU-Net raw
dataset that medssl's nnU-Net reader reads back as the same cases."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medssl.cli import main
from medssl.data.case import Case
from medssl.data.convert import convert_source, image_dtype
from medssl.data.readers import open_source
from medssl.errors import DataError, DataErrors
from tests import builders
from tests.data.dicom_builders import phantom_dicom, write_cine_dicom


def _by_key(root: Path, fmt: str | None = None) -> dict[tuple[str, int | None, bool], Case]:
    source = open_source(root, fmt)
    assert not source.problems, source.problems
    return {(c.patient_id, c.frame, c.labelled): c for r in source.refs for c in r.load()}


def _assert_same_cases(a: dict, b: dict) -> None:
    assert sorted(a, key=str) == sorted(b, key=str)
    for key, case in a.items():
        other = b[key]
        np.testing.assert_array_equal(other.image, case.image)
        if case.label is not None:
            np.testing.assert_array_equal(other.label, case.label)
        assert other.spacing == pytest.approx(case.spacing)
        if case.affine is not None:
            np.testing.assert_allclose(other.affine, case.affine, atol=1e-5)


def test_acdc_round_trip(acdc_source: Path, tmp_path: Path) -> None:
    result = convert_source(acdc_source, tmp_path / "nn", "nnunet")
    assert (result.labelled, result.unlabelled, result.patients) == (6, 15, 3)
    spec = json.loads((tmp_path / "nn" / "dataset.json").read_text())
    assert spec["labels"] == {"background": 0, "RV": 1, "MYO": 2, "LV": 3}
    assert spec["numTraining"] == 6 and spec["file_ending"] == ".nii.gz"
    converted = open_source(tmp_path / "nn")
    assert converted.format == "nnunet" and converted.labels == open_source(acdc_source).labels
    original = _by_key(acdc_source)
    _assert_same_cases(original, _by_key(tmp_path / "nn"))
    phases = {(r.patient_id, r.frame): r.phase for r in converted.refs if r.kind == "labelled"}
    assert phases == {
        (c.patient_id, c.frame): c.phase for c in original.values() if c.label is not None
    }


def test_h5_without_spacing_and_no_series(h5_source: Path, tmp_path: Path) -> None:
    result = convert_source(h5_source, tmp_path / "nn", include_series=False)
    assert result.labelled == 6 and result.unlabelled == 0
    case = next(iter(_by_key(tmp_path / "nn").values()))
    assert case.spacing == (1.0, 1.0, 1.0)  # unknown spacing: an identity affine
    assert nib.load(next((tmp_path / "nn" / "imagesTr").iterdir())).get_data_dtype() == np.float32


def test_dicom_cine_becomes_nifti_with_its_geometry(tmp_path: Path) -> None:
    nifti, dicom = phantom_dicom(tmp_path / "src", n_frames=2)
    assert main(["data", "convert", str(dicom), "--to", "nnunet", str(tmp_path / "nn")]) == 0
    cine = nib.load(nifti / "training" / "patient001" / "patient001_4d.nii.gz")
    for t in range(2):
        img = nib.load(tmp_path / "nn" / "imagesTs" / f"patient001_frame{t + 1:02d}_0000.nii.gz")
        assert img.get_data_dtype() == np.int16
        np.testing.assert_array_equal(np.asanyarray(img.dataobj), cine.dataobj[..., t])
        np.testing.assert_allclose(img.affine, cine.affine, atol=1e-4)
    _assert_same_cases(_by_key(dicom), _by_key(tmp_path / "nn"))


def test_two_stacks_of_one_patient_keep_the_patient(tmp_path: Path) -> None:
    for i in range(2):
        frames = [np.transpose(builders.make_volume(i * 10 + t)[0], (2, 1, 0)) for t in range(2)]
        affine = builders.affine_for()
        affine[:3, 3] += 100 * i
        write_cine_dicom(tmp_path / "src" / f"s{i}", np.stack(frames, -1), affine, "Mr X")
    result = convert_source(tmp_path / "src", tmp_path / "nn")
    assert result.unlabelled == 4 and result.patients == 1
    names = sorted(p.name for p in (tmp_path / "nn" / "imagesTs").iterdir())
    assert names == [f"Mr_X_frame0{t}_0000.nii.gz" for t in (1, 2, 3, 4)]


def test_refuses_bad_source_and_non_empty_output(acdc_source: Path, tmp_path: Path) -> None:
    (acdc_source / "training" / "patient002" / "patient002_frame01.nii.gz").write_bytes(b"")
    with pytest.raises(DataErrors, match="empty-file"):
        convert_source(acdc_source, tmp_path / "nn")
    assert not any(tmp_path.glob("*nn*"))  # no output, no temporary folder
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep")
    with pytest.raises(DataError, match="output-exists"):
        convert_source(acdc_source, tmp_path / "full")
    assert (tmp_path / "full" / "x").read_text() == "keep"


def test_image_dtype() -> None:
    assert image_dtype(np.array([1.0, -3.0])) is np.int16
    assert image_dtype(np.array([0.5])) is np.float32
    assert image_dtype(np.array([40000.0])) is np.float32
