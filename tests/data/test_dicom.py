"""The DICOM reader: real files written with pydicom from the phantom's cine series.

The phantom's NIfTI cine (an oblique slice stack with a known RAS affine) is the
truth: read back from DICOM, every phase must give the same voxels in the same order,
the same spacing and the same affine, however the files are named, split into series
or numbered.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from medssl.cli import main
from medssl.data.case import Case, Phase
from medssl.data.dicom import parse_header
from medssl.data.dicom_stack import LPS_TO_RAS, stack_affine
from medssl.data.nifti import spacing_from_zooms, to_slices
from medssl.data.readers import detect_format, open_source
from tests import builders
from tests.data.dicom_builders import phantom_dicom, write_cine_dicom

AFFINE_TOL = 1e-4  # mm: DS values carry 6 decimals


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(nifti_root, dicom_root)``: one phantom patient, 3 cine phases."""
    return phantom_dicom(tmp_path_factory.mktemp("dicom"), patients=(1,), n_frames=3)


def _nifti_cine(nifti_root: Path, pid: str = "patient001") -> nib.Nifti1Image:
    return nib.load(nifti_root / "training" / pid / f"{pid}_4d.nii.gz")


def _cases(root: Path) -> list[Case]:
    source = open_source(root)
    assert not source.problems, source.problems
    return [c for ref in source.refs for c in ref.load()]


def _assert_matches_nifti(cases: list[Case], cine: nib.Nifti1Image) -> None:
    raw = np.asanyarray(cine.dataobj)
    assert [c.frame for c in cases] == list(range(1, raw.shape[3] + 1))
    for case in cases:
        np.testing.assert_array_equal(case.image, to_slices(raw[..., case.frame - 1]))
        np.testing.assert_allclose(case.affine, cine.affine, atol=AFFINE_TOL)
        np.testing.assert_allclose(
            case.spacing, spacing_from_zooms(cine.header.get_zooms()[:3]), rtol=1e-5
        )


def test_detects_dicom(phantom: tuple[Path, Path]) -> None:
    assert detect_format(phantom[1]) == "dicom"


def test_cine_matches_the_nifti_voxels_spacing_and_affine(phantom: tuple[Path, Path]) -> None:
    nifti, dicom = phantom
    source = open_source(dicom)
    assert source.format == "dicom" and not source.problems
    assert source.patients == ["patient001"] and not source.label_names
    (ref,) = source.refs
    assert ref.kind == "series" and ref.meta.n_frames == 3 and len(ref.files) == 3 * 9
    cases = list(ref.load())
    assert all(c.label is None and c.phase == Phase.NONE for c in cases)
    assert all(c.image.dtype == np.float32 for c in cases)
    _assert_matches_nifti(cases, _nifti_cine(nifti))


def test_slices_follow_the_normal_not_the_files(phantom: tuple[Path, Path], tmp_path: Path) -> None:
    """The same stack written from its last slice to its first reads back unchanged."""
    cine = _nifti_cine(phantom[0])
    data = np.asanyarray(cine.dataobj)
    flipped = cine.affine.copy()
    flipped[:3, 3] += flipped[:3, 2] * (data.shape[2] - 1)
    flipped[:3, 2] *= -1
    write_cine_dicom(tmp_path / "rev", data[:, :, ::-1], flipped, "patient001", seed=5)
    _assert_matches_nifti(_cases(tmp_path / "rev"), cine)


def test_one_series_per_slice_is_one_stack(phantom: tuple[Path, Path], tmp_path: Path) -> None:
    cine = _nifti_cine(phantom[0])
    write_cine_dicom(
        tmp_path / "sax", np.asanyarray(cine.dataobj), cine.affine, "p1", series_per_slice=True
    )
    source = open_source(tmp_path / "sax")
    assert len(source.refs) == 1 and not source.problems
    _assert_matches_nifti(list(source.refs[0].load()), cine)


def test_phases_follow_trigger_time(tmp_path: Path) -> None:
    frames = [builders.make_volume(t)[0] for t in range(3)]
    data = np.stack([np.transpose(f, (2, 1, 0)) for f in frames], axis=-1)
    paths = write_cine_dicom(tmp_path / "d", data, builders.affine_for(), "p")
    for path in paths[0]:  # the first-written phase now comes last
        ds = pydicom.dcmread(path)
        ds.TriggerTime = "500"
        ds.save_as(path)
    cases = _cases(tmp_path / "d")
    order = [1, 2, 0]
    for case, t in zip(cases, order, strict=True):
        np.testing.assert_array_equal(case.image, frames[t].astype(np.int16))
    assert [c.sources for c in cases] == [tuple(paths[t]) for t in order]


def test_single_phase_is_an_unlabelled_volume_with_the_builders_geometry(tmp_path: Path) -> None:
    image, _ = builders.make_volume(4)
    write_cine_dicom(tmp_path / "d", np.transpose(image, (2, 1, 0)), builders.affine_for(), "p")
    (case,) = _cases(tmp_path / "d")
    assert case.frame is None and case.spacing == pytest.approx(builders.SPACING)
    np.testing.assert_allclose(case.affine, builders.affine_for(), atol=AFFINE_TOL)
    assert open_source(tmp_path / "d").refs[0].kind == "unlabelled"


def test_files_without_suffix_and_other_files(phantom: tuple[Path, Path], tmp_path: Path) -> None:
    """DICOM files are found by their preamble; other files and DICOMDIR are ignored."""
    root = tmp_path / "export"
    shutil.copytree(phantom[1], root)
    for path in root.rglob("*.dcm"):
        path.rename(path.with_suffix(""))
    (root / "README.txt").write_text("exported")
    (root / "patient001" / "notes").write_bytes(b"\x00" * 300)
    assert detect_format(root) == "dicom"
    _assert_matches_nifti(_cases(root), _nifti_cine(phantom[0]))


def test_patients_and_stacks_are_separate(tmp_path: Path) -> None:
    for i, pid in enumerate(("A 1", "B/2")):
        image, _ = builders.make_volume(i)
        write_cine_dicom(
            tmp_path / f"p{i}", np.transpose(image, (2, 1, 0)), builders.affine_for(), pid
        )
    assert open_source(tmp_path).patients == ["A 1", "B/2"]


@pytest.mark.filterwarnings("ignore:The DICOM readers are highly experimental")
def test_in_plane_affine_agrees_with_nibabel(phantom: tuple[Path, Path]) -> None:
    """nibabel's own DICOM wrapper (voxel axes ``(row, column)``, LPS) gives the same
    in-plane geometry of every slice once its axes are swapped and flipped to RAS."""
    from nibabel.nicom.dicomwrappers import wrapper_from_file

    case = _cases(phantom[1])[0]
    for k, path in enumerate(case.sources):
        theirs = LPS_TO_RAS @ wrapper_from_file(path).affine
        ours = case.affine @ np.array([[1, 0, 0], [0, 1, 0], [0, 0, k], [0, 0, 1]])
        np.testing.assert_allclose(ours[:, :2], theirs[:, [1, 0]], atol=1e-9)
        np.testing.assert_allclose(ours[:, 2], theirs[:, 3], atol=AFFINE_TOL)


def test_stack_affine_axial() -> None:
    """Axial images (rows along LPS y, columns along LPS x), worked out by hand."""
    affine = stack_affine((1, 0, 0, 0, 1, 0), (2.0, 3.0), (10.0, 20.0, 30.0), (0, 0, 5.0))
    expected = np.array([[-3.0, 0, 0, -10.0], [0, -2.0, 0, -20.0], [0, 0, 5.0, 30.0], [0, 0, 0, 1]])
    np.testing.assert_allclose(affine, expected)
    np.testing.assert_allclose(LPS_TO_RAS @ LPS_TO_RAS, np.eye(4))


def test_header_keeps_only_what_is_needed(phantom: tuple[Path, Path]) -> None:
    path = next(phantom[1].rglob("*.dcm"))
    image = parse_header(path)
    assert image is not None and image.patient_id == "patient001"
    assert "Anonymous" not in repr(image)  # the patient's name is never kept


def test_cli_check_and_prepare(phantom: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    assert main(["data", "check", str(phantom[1])]) == 0
    out = capsys.readouterr().out
    assert "(dicom)" in out and "4D frames" in out
    assert main(["data", "prepare", str(phantom[1]), "--out", str(tmp_path / "cache")]) == 0
    assert "3 cine frames" in capsys.readouterr().out
