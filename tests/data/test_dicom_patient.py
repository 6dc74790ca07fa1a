"""Patient metadata from DICOM headers: age, sex, height and weight reach the cases, the
check summary and the cache; names, dates, institutions and accession numbers reach no
file medssl writes and no log line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from medssl.artifacts.manifest import CachePaths
from medssl.cli import main
from medssl.data.case import PatientMeta
from medssl.data.dicom_patient import merge_meta, parse_age, parse_sex, patient_meta
from medssl.data.readers import open_source
from medssl.data.validate import check_source, describe_meta
from tests.data.dicom_builders import write_cine_dicom, write_enhanced_dicom

META_TAGS = {
    "PatientAge": "047Y",
    "PatientSex": "F",
    "PatientSize": "1.68",
    "PatientWeight": "61.5",
}
#: Identifying elements set to strings that must not appear anywhere medssl writes.
MARKERS = {
    "PatientName": "Zqxmarker^Nameone",
    "PatientBirthDate": "19330517",
    "PatientAddress": "Markerstrasse 77 Qzville",
    "InstitutionName": "QZMARKER INSTITUTE",
    "InstitutionAddress": "Qzmarker Campus 9",
    "AccessionNumber": "ACCQZ98765",
    "ReferringPhysicianName": "Qzdoctor^Marker",
    "OtherPatientIDs": "OTHERQZID42",
    "StudyDescription": "QZSTUDYDESC",
}


@pytest.mark.parametrize(
    ("text", "years"),
    [
        ("045Y", 45.0),
        ("006M", 0.5),
        ("003W", 0.06),
        ("010D", 0.03),
        ("000Y", 0.0),
        ("", None),
        ("45", None),
        ("4.5Y", None),
        ("045X", None),
        (None, None),
    ],
)
def test_parse_age(text: str | None, years: float | None) -> None:
    assert parse_age(text) == years


@pytest.mark.parametrize(
    ("text", "sex"), [("M", "M"), ("f", "F"), ("O", "O"), ("", None), ("X", None)]
)
def test_parse_sex(text: str, sex: str | None) -> None:
    assert parse_sex(text) == sex


@pytest.mark.filterwarnings("ignore:Invalid value for VR AS")
def test_patient_meta_units_and_bad_values(tmp_path: Path) -> None:
    ds = pydicom.Dataset()
    for key, value in META_TAGS.items():
        setattr(ds, key, value)
    assert patient_meta(tmp_path, ds) == PatientMeta(
        height_cm=168.0, weight_kg=61.5, age_years=47.0, sex="F"
    )
    ds.PatientSize, ds.PatientWeight, ds.PatientAge = "0", "-3", "old"
    meta = patient_meta(tmp_path, ds)
    assert (meta.height_cm, meta.weight_kg, meta.age_years, meta.sex) == (None, None, None, "F")
    assert patient_meta(tmp_path, pydicom.Dataset()) == PatientMeta()


def test_merge_meta_takes_first_value_of_each_field() -> None:
    merged = merge_meta([PatientMeta(sex="M"), PatientMeta(sex="F", weight_kg=80.0)])
    assert merged == PatientMeta(sex="M", weight_kg=80.0)
    assert merge_meta([]) == PatientMeta()


def test_describe_meta() -> None:
    metas = [
        PatientMeta(age_years=40.0, sex="F", height_cm=160.0),
        PatientMeta(age_years=60.0, sex="M"),
        PatientMeta(sex="F"),
    ]
    assert describe_meta(metas) == "age 40 .. 60 y (2), height 160 .. 160 cm (1), sex F 2 M 1"
    assert describe_meta([PatientMeta()]) == "-"


def _cine(folder: Path, tags: dict[str, str], pid: str = "patient001") -> Path:
    rng = np.random.default_rng(0)
    data = rng.integers(0, 500, size=(6, 5, 3, 2)).astype(np.int16)
    affine = np.diag([1.5, 1.5, 8.0, 1.0])
    write_cine_dicom(folder / pid, data, affine, pid, tags=tags)
    return folder


def test_dicom_meta_reaches_cases_check_and_cache(tmp_path: Path) -> None:
    root = _cine(tmp_path / "dicom", META_TAGS)
    expected = PatientMeta(height_cm=168.0, weight_kg=61.5, n_frames=2, age_years=47.0, sex="F")
    source = open_source(root)
    assert [ref.meta for ref in source.refs] == [expected]
    assert all(case.meta == expected for ref in source.refs for case in ref.load())
    rows = dict(check_source(root).summary_rows())
    assert rows["patient metadata"] == (
        "age 47 .. 47 y (1), height 168 .. 168 cm (1), weight 61.5 .. 61.5 kg (1), sex F 1"
    )
    assert main(["data", "prepare", str(root), "--out", str(tmp_path / "cache")]) == 0
    volumes = json.loads(CachePaths(tmp_path / "cache").volumes.read_text())
    assert [v["meta"] for v in volumes] == [expected.to_dict()] * 2


def test_enhanced_dicom_meta(tmp_path: Path) -> None:
    data = np.arange(6 * 5 * 3 * 2, dtype=np.int16).reshape(6, 5, 3, 2)
    path = tmp_path / "dicom" / "enh.dcm"
    write_enhanced_dicom(path, data, np.diag([1.5, 1.5, 8.0, 1.0]), "p1", tags=META_TAGS)
    (ref,) = open_source(tmp_path / "dicom").refs
    assert (ref.meta.age_years, ref.meta.sex, ref.meta.height_cm, ref.meta.weight_kg) == (
        47.0,
        "F",
        168.0,
        61.5,
    )


def _written_files(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob("*") if p.is_file()]


def _decompressed(path: Path) -> bytes:
    """The bytes of a file, with a NIfTI's voxels and header decompressed."""
    data = path.read_bytes()
    if path.name.endswith(".nii.gz"):
        img = nib.load(path)
        data += img.header.binaryblock + np.asanyarray(img.dataobj).tobytes()
    return data


def test_identifying_tags_reach_no_output_or_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """check, prepare and convert on a DICOM folder whose headers carry names, a birth
    date, an institution and an accession number: none of them in any file written or
    any line logged or printed (the patient id and age, sex, height, weight are kept)."""
    root = _cine(tmp_path / "dicom", {**META_TAGS, **MARKERS}, pid="PID0042")
    sources = list(root.rglob("*.dcm"))
    assert all(MARKERS["InstitutionName"].encode() in p.read_bytes() for p in sources)
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "out"
    assert main(["-v", "data", "check", str(root)]) == 0
    assert main(["-v", "data", "prepare", str(root), "--out", str(out / "cache")]) == 0
    assert main(["-v", "data", "convert", str(root), "--to", "nnunet", str(out / "nnunet")]) == 0
    captured = capsys.readouterr()
    text = caplog.text + captured.out + captured.err
    assert "sex F 1" in text  # what is kept does reach the outputs
    files = _written_files(out)
    volumes = CachePaths(out / "cache").volumes.read_text()
    assert "PID0042" in volumes and '"age_years": 47.0' in volumes
    assert any(p.name == "dataset.json" for p in files)
    for marker in MARKERS.values():
        variants = {marker, marker.replace("^", " "), *marker.split("^")}
        for variant in variants:
            assert variant not in text, f"{variant!r} in logs/output"
            needle = variant.encode()
            leaked = [p for p in files if needle in _decompressed(p)]
            assert not leaked, f"{variant!r} written to {leaked}"
