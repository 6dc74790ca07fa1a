"""NRRD and MHA volumes (SimpleITK): the phantom's NIfTI written as NRRD and MHA reads
back with the same voxels, spacing and affine, as an unlabelled pool and in the nnU-Net
layout, and broken files are refused by name and check."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk  # noqa: N813 - the library's own alias

from medssl.cli import main
from medssl.data.case import Case
from medssl.data.itk_volume import read_itk
from medssl.data.nifti import spacing_from_zooms, to_slices
from medssl.data.phantom.generate import generate_phantom
from medssl.data.readers import detect_format, open_source
from medssl.errors import DataError

AFFINE_TOL = 1e-4  # mm: float32 geometry through ITK
PID = "patient001"


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The phantom patient's folder (ACDC layout): frames, labels and the 4D cine."""
    root = tmp_path_factory.mktemp("phantom")
    generate_phantom(root, 1, seed=0, n_frames=3, workers=1)
    return root / "training" / PID


def as_itk(nifti: Path, out: Path) -> Path:
    """Write ``nifti`` in the format ``out``'s suffix names, geometry only (no NIfTI
    header fields carried as metadata)."""
    image = sitk.ReadImage(str(nifti))
    for key in image.GetMetaDataKeys():
        image.EraseMetaData(key)
    out.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(out), useCompression=out.suffix == ".nrrd")
    return out


def _cases(root: Path) -> dict[str, list[Case]]:
    source = open_source(root)
    assert not source.problems, source.problems
    return {ref.files[0].name: list(ref.load()) for ref in source.refs}


def _assert_same(case: Case, nifti: nib.Nifti1Image, frame: int | None = None) -> None:
    raw = np.asanyarray(nifti.dataobj)
    raw = raw if frame is None else raw[..., frame - 1]
    np.testing.assert_array_equal(case.image, to_slices(raw))
    np.testing.assert_allclose(case.affine, nifti.affine, atol=AFFINE_TOL)
    np.testing.assert_allclose(
        case.spacing, spacing_from_zooms(nifti.header.get_zooms()[:3]), rtol=1e-5
    )


@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
def test_pool_matches_the_nifti(phantom: Path, tmp_path: Path, suffix: str) -> None:
    frame = phantom / f"{PID}_frame01.nii.gz"
    cine = phantom / f"{PID}_4d.nii.gz"
    as_itk(frame, tmp_path / f"{PID}_frame01{suffix}")
    as_itk(cine, tmp_path / f"cine{suffix}")
    assert detect_format(tmp_path) == "nifti-folder"
    cases = _cases(tmp_path)
    (volume,) = cases[f"{PID}_frame01{suffix}"]
    assert (volume.patient_id, volume.frame) == (PID, 1)
    _assert_same(volume, nib.load(frame))
    frames = cases[f"cine{suffix}"]
    assert [c.frame for c in frames] == [1, 2, 3]
    for case in frames:
        _assert_same(case, nib.load(cine), case.frame)


def test_oblique_affine_survives(tmp_path: Path) -> None:
    """A rotated, shifted, anisotropic grid: ITK's LPS geometry comes back as RAS."""
    theta = 0.4
    rot = np.array(
        [[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]]
    )
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([1.25, 1.5, 8.0])
    affine[:3, 3] = [12.0, -30.5, 4.0]
    data = np.arange(5 * 6 * 4, dtype=np.int16).reshape(5, 6, 4)
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "v.nii.gz")
    vol = read_itk(as_itk(tmp_path / "v.nii.gz", tmp_path / "v.mha"))
    np.testing.assert_array_equal(vol.data, data)
    np.testing.assert_allclose(vol.affine, affine, atol=AFFINE_TOL)
    assert vol.zooms == pytest.approx((1.25, 1.5, 8.0))


def _dataset_json(n_train: int, ending: str) -> dict:
    return {
        "channel_names": {"0": "MRI"},
        "labels": {"background": 0, "RV": 1, "MYO": 2, "LV": 3},
        "numTraining": n_train,
        "file_ending": ending,
    }


@pytest.mark.parametrize("ending", [".nrrd", ".mha"])
def test_nnunet_layout_with_itk_ending(phantom: Path, tmp_path: Path, ending: str) -> None:
    root = tmp_path / "nn"
    stems = sorted(p.name[: -len("_gt.nii.gz")] for p in phantom.glob("*_gt.nii.gz"))
    assert len(stems) == 2  # ED and ES
    for stem in stems:
        as_itk(phantom / f"{stem}.nii.gz", root / "imagesTr" / f"{stem}_0000{ending}")
        as_itk(phantom / f"{stem}_gt.nii.gz", root / "labelsTr" / f"{stem}{ending}")
    (root / "dataset.json").write_text(json.dumps(_dataset_json(len(stems), ending)))
    source = open_source(root)
    assert source.format == "nnunet" and source.spacing_known and not source.problems
    assert len(source.refs) == 2
    for ref in source.refs:
        (case,) = ref.load()
        stem = ref.files[1].name[: -len(ending)]
        _assert_same(case, nib.load(phantom / f"{stem}.nii.gz"))
        gt = np.asanyarray(nib.load(phantom / f"{stem}_gt.nii.gz").dataobj)
        np.testing.assert_array_equal(case.label, to_slices(gt))


def _vector_image(path: Path) -> None:
    sitk.WriteImage(sitk.Image([4, 5, 3], sitk.sitkVectorUInt8, 3), str(path))


def _flat_image(path: Path) -> None:
    sitk.WriteImage(sitk.Image([4, 5], sitk.sitkUInt8), str(path))


def _cut(keep: float):
    def cut(path: Path) -> None:
        raw = path.read_bytes()
        path.write_bytes(raw[: int(len(raw) * keep)])

    return cut


@pytest.mark.parametrize(
    ("breaker", "check"),
    [
        (lambda p: p.write_bytes(b""), "empty-file"),
        (lambda p: p.write_bytes(b"not an image"), "bad-header"),
        (_cut(0.9), "truncated"),
        (_vector_image, "multi-component"),
        (_flat_image, "dimensionality"),
    ],
    ids=["zero-bytes", "garbage", "cut-in-voxels", "rgb", "2d"],
)
def test_bad_file_is_one_problem_line(
    phantom: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], breaker, check: str
) -> None:
    root = tmp_path / "pool"
    as_itk(phantom / f"{PID}_frame01.nii.gz", root / "good.mha")
    bad = as_itk(phantom / f"{PID}_frame01.nii.gz", root / "bad.mha")
    breaker(bad)
    assert main(["data", "check", str(root), "--format", "nifti-folder"]) != 0
    out, err = capsys.readouterr()
    problems = [ln for ln in out.splitlines() if ln.startswith("PROBLEM ")]
    assert problems and all(ln.startswith(f"PROBLEM {bad}: [{check}] ") for ln in problems), (
        out + err
    )
    assert "Traceback" not in out + err


def test_label_with_other_geometry_is_refused(phantom: Path, tmp_path: Path) -> None:
    root = tmp_path / "nn"
    stem = f"{PID}_frame01"
    as_itk(phantom / f"{stem}.nii.gz", root / "imagesTr" / f"{stem}_0000.nrrd")
    gt = as_itk(phantom / f"{stem}_gt.nii.gz", root / "labelsTr" / f"{stem}.nrrd")
    shifted = sitk.ReadImage(str(gt))
    shifted.SetOrigin(tuple(o + 5.0 for o in shifted.GetOrigin()))
    sitk.WriteImage(shifted, str(gt))
    (root / "dataset.json").write_text(json.dumps(_dataset_json(1, ".nrrd")))
    (ref,) = open_source(root).refs
    with pytest.raises(DataError, match=r"\[affine-mismatch\]"):
        list(ref.load())
