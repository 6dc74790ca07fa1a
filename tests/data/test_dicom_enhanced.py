"""Enhanced multi-frame MR, compressed transfer syntaxes and MONOCHROME1: each reads back
as the phantom's NIfTI cine (same voxels, affine, spacing, phases), and a syntax no
installed decoder reads is one line naming it."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.pixels import get_decoder
from pydicom.uid import JPEGLossless, JPEGLSLossless, RLELossless

from medssl.cli import main
from medssl.data.case import Case
from medssl.data.nifti import spacing_from_zooms, to_slices
from medssl.data.readers import open_source
from medssl.errors import DataError
from tests.data.dicom_builders import phantom_dicom, write_enhanced_dicom

PID = "patient001"
AFFINE_TOL = 1e-4


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> tuple[nib.Nifti1Image, Path]:
    """``(the phantom's NIfTI cine, its single-frame DICOM folder)``: 3 phases."""
    nifti, dicom = phantom_dicom(tmp_path_factory.mktemp("enhanced"), n_frames=3)
    return nib.load(nifti / "training" / PID / f"{PID}_4d.nii.gz"), dicom


def _cases(root: Path) -> list[Case]:
    source = open_source(root)
    assert not source.problems, source.problems
    return [c for ref in source.refs for c in ref.load()]


def _assert_cine(cases: list[Case], cine: nib.Nifti1Image, scale=(1.0, 0.0)) -> None:
    raw = np.asanyarray(cine.dataobj)
    assert [c.frame for c in cases] == list(range(1, raw.shape[3] + 1))
    for case in cases:
        expected = to_slices(raw[..., case.frame - 1]) * scale[0] + scale[1]
        np.testing.assert_array_equal(case.image, expected)
        np.testing.assert_allclose(case.affine, cine.affine, atol=AFFINE_TOL)
        np.testing.assert_allclose(
            case.spacing, spacing_from_zooms(cine.header.get_zooms()[:3]), rtol=1e-5
        )


def _write_enhanced(cine: nib.Nifti1Image, path: Path, **kwargs) -> Path:
    return write_enhanced_dicom(path, np.asanyarray(cine.dataobj), cine.affine, PID, **kwargs)


def test_enhanced_cine_matches_the_nifti(phantom, tmp_path: Path) -> None:
    cine, _ = phantom
    path = _write_enhanced(cine, tmp_path / "enh" / "cine.dcm", rescale=(2.0, -100.0))
    (ref,) = open_source(tmp_path / "enh").refs
    assert ref.kind == "series" and ref.files == (path,)
    cases = list(ref.load())
    _assert_cine(cases, cine, scale=(2.0, -100.0))  # frames shuffled, rescale per frame
    assert all(c.sources == (path,) for c in cases)


def test_enhanced_beside_single_frame_files(phantom, tmp_path: Path) -> None:
    cine, dicom = phantom
    root = Path(shutil.copytree(dicom, tmp_path / "mixed"))
    _write_enhanced(cine, root / "enhanced" / "cine.dcm")
    source = open_source(root)
    assert not source.problems and len(source.refs) == 2
    for ref in source.refs:
        _assert_cine(list(ref.load()), cine)
    assert main(["data", "check", str(root)]) == 0


def _edit_frame(path: Path, edit) -> None:
    ds = pydicom.dcmread(path)
    edit(ds)
    ds.save_as(path)


def test_enhanced_faults_name_the_file_and_frame(phantom, tmp_path: Path) -> None:
    cine, _ = phantom
    path = _write_enhanced(cine, tmp_path / "a" / "cine.dcm")
    _edit_frame(
        path, lambda ds: delattr(ds.PerFrameFunctionalGroupsSequence[4], "PlanePositionSequence")
    )
    (err,) = open_source(tmp_path / "a").problems
    assert (err.path, err.check) == (path, "missing-tag")
    assert "frame 5: no ImagePositionPatient" in err.detail
    path = _write_enhanced(cine, tmp_path / "b" / "cine.dcm")
    _edit_frame(path, lambda ds: setattr(ds, "NumberOfFrames", ds.NumberOfFrames + 1))
    (err,) = open_source(tmp_path / "b").problems
    assert (err.path, err.check) == (path, "multi-frame")


@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless], ids=["rle", "jpeg-ls"])
def test_compressed_files_read_the_same(phantom, tmp_path: Path, syntax) -> None:
    cine, dicom = phantom
    root = Path(shutil.copytree(dicom, tmp_path / "src"))
    for path in root.rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.compress(syntax)
        ds.save_as(path)
    assert pydicom.dcmread(next(root.rglob("*.dcm"))).file_meta.TransferSyntaxUID == syntax
    _assert_cine(_cases(root), cine)


def _claim_syntax(path: Path, syntax: str) -> None:
    from pydicom.encaps import encapsulate

    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = syntax
    ds.PixelData = encapsulate([b"\xff\xd8" + b"\x00" * 64])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, implicit_vr=False, little_endian=True)


def test_missing_decoder_is_named(phantom, tmp_path: Path, capsys) -> None:
    if get_decoder(JPEGLossless).is_available:
        pytest.skip("a JPEG Lossless decoder is installed (the dicom-codecs extra)")
    _, dicom = phantom
    root = Path(shutil.copytree(dicom, tmp_path / "src"))
    path = min(root.rglob("*.dcm"))
    _claim_syntax(path, JPEGLossless)
    assert main(["data", "check", str(root)]) != 0
    problems = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("PROBLEM")]
    assert problems == [
        f"PROBLEM {path}: [pixel-data] JPEG Lossless, Non-Hierarchical (Process 14) pixel data"
        " needs a decoder: pip install 'medssl[dicom-codecs]'"
    ]


def test_unknown_syntax_is_named(phantom, tmp_path: Path) -> None:
    _, dicom = phantom
    root = Path(shutil.copytree(dicom, tmp_path / "src"))
    path = min(root.rglob("*.dcm"))
    _claim_syntax(path, "1.2.826.0.1.3680043.9.9999.1")  # a private syntax
    (ref,) = open_source(root).refs
    with pytest.raises(DataError, match=r"\[pixel-data\] unknown transfer syntax 1\.2\.826"):
        list(ref.load())


def test_monochrome1_is_inverted(phantom, tmp_path: Path) -> None:
    """Stored values mirrored in their bit range read back as the MONOCHROME2 values."""
    cine, dicom = phantom
    root = Path(shutil.copytree(dicom, tmp_path / "src"))
    for path in root.rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.PhotometricInterpretation = "MONOCHROME1"
        ds.PixelData = (-1 - ds.pixel_array.astype(np.int16)).astype(np.int16).tobytes()
        ds.save_as(path)
    _assert_cine(_cases(root), cine)
