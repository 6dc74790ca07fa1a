"""Bad DICOM inputs: every broken file or stack is refused by name and check.

Each case writes a good tiny cine (4 slices x 3 phases, one single-frame MR file each),
breaks one file (or removes, copies or edits several), then checks that
``medssl data check`` exits non-zero and prints ``PROBLEM <file>: [<check>] ...`` lines
that all name the expected file and check, and that ``medssl data prepare`` refuses
with the same one-line errors and writes no cache.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGLossless

from medssl.cli import main
from tests import builders
from tests.data.dicom_builders import write_cine_dicom

Grid = list[list[Path]]  # grid[t][k]: phase t, slice k
#: A breaker damages the source given its file grid and returns the path every problem
#: must name.
Breaker = Callable[[Grid], Path]


def _build(root: Path) -> Grid:
    frames = [np.transpose(builders.make_volume(10 + t)[0], (2, 1, 0)) for t in range(3)]
    return write_cine_dicom(root, np.stack(frames, axis=-1), builders.affine_for(), "patient007")


def _last(grid: Grid) -> Path:
    """The stack's file that sorts last (never the reference the others are checked
    against)."""
    return max(p for phase in grid for p in phase)


def _edit_dataset(ds: pydicom.Dataset, tags: dict[str, object]) -> None:
    for key, value in tags.items():
        if value is None:
            delattr(ds, key)
        else:
            setattr(ds, key, value)


def _edit(pick: Callable[[Grid], Path], **tags: object) -> Breaker:
    """Set (or, for ``None``, delete) header tags of one file."""

    def edit(grid: Grid) -> Path:
        path = pick(grid)
        ds = pydicom.dcmread(path)
        _edit_dataset(ds, tags)
        ds.save_as(path)
        return path

    return edit


def _edit_slice(k: int, named_phase: int = 0, **tags: object) -> Breaker:
    """Edit every phase of slice ``k``; name its file of ``named_phase``."""

    def edit(grid: Grid) -> Path:
        for phase in grid:
            ds = pydicom.dcmread(phase[k])
            _edit_dataset(ds, tags)
            ds.save_as(phase[k])
        return grid[named_phase][k]

    return edit


def _edit_all(**tags: object) -> Breaker:
    """Edit every file; name the one that sorts first (the stack's reference)."""

    def edit(grid: Grid) -> Path:
        paths = sorted(p for phase in grid for p in phase)
        for path in paths:
            ds = pydicom.dcmread(path)
            _edit_dataset(ds, tags)
            ds.save_as(path)
        return paths[0]

    return edit


def _cut(n: int) -> Breaker:
    """Keep the first ``n`` bytes of one file (all of them but ``-n`` when negative)."""

    def cut(grid: Grid) -> Path:
        path = grid[1][2]
        raw = path.read_bytes()
        path.write_bytes(raw[:n])
        return path

    return cut


def _undecodable(grid: Grid) -> Path:
    """JPEG Lossless pixel data that no decoder can read (none installed, or garbage)."""
    path = grid[2][0]
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = JPEGLossless
    ds.PixelData = encapsulate([b"\xff\xd8" + b"\x00" * 64])
    ds["PixelData"].VR = "OB"
    ds.save_as(path)
    return path


def _remove_one(grid: Grid) -> Path:
    grid[0][2].unlink()
    return grid[1][2]  # now the first of the short slice position


def _remove_slice(grid: Grid) -> Path:
    for phase in grid:
        phase[1].unlink()
    return grid[0][2]  # the slice after the gap


def _copy_one(grid: Grid) -> Path:
    copy = grid[1][1].with_name("ZZ_copy.dcm")
    shutil.copy(grid[1][1], copy)
    return copy


def _shifted(grid: Grid) -> tuple[str, str, str]:
    ipp = [float(v) for v in pydicom.dcmread(grid[0][2]).ImagePositionPatient]
    return (f"{ipp[0] + 5:.6f}", f"{ipp[1]:.6f}", f"{ipp[2]:.6f}")


def _shift_slice(grid: Grid) -> Path:
    return _edit_slice(2, ImagePositionPatient=list(_shifted(grid)))(grid)


@dataclass(frozen=True)
class BadDicom:
    breaker: Breaker
    check: str


CASES: dict[str, BadDicom] = {
    "zero-bytes": BadDicom(_cut(0), "empty-file"),
    "cut-100-bytes": BadDicom(_cut(100), "not-dicom"),
    "cut-in-file-meta": BadDicom(_cut(140), "unreadable"),
    "cut-in-header": BadDicom(_cut(600), "truncated"),
    "cut-in-pixels": BadDicom(_cut(-100), "truncated"),
    "undecodable-pixels": BadDicom(_undecodable, "pixel-data"),
    "no-position": BadDicom(_edit(_last, ImagePositionPatient=None), "missing-tag"),
    "no-orientation": BadDicom(_edit(_last, ImageOrientationPatient=None), "missing-tag"),
    "no-pixel-spacing": BadDicom(_edit(_last, PixelSpacing=None), "missing-tag"),
    "no-patient-id": BadDicom(_edit(_last, PatientID=""), "missing-tag"),
    "zero-pixel-spacing": BadDicom(_edit(_last, PixelSpacing=["0", "1.25"]), "bad-spacing"),
    "absurd-matrix": BadDicom(_edit(_last, Rows=30000, Columns=30000), "absurd-size"),
    "multi-frame": BadDicom(_edit(_last, NumberOfFrames=2), "multi-frame"),
    "other-patient": BadDicom(_edit(_last, PatientID="patient008"), "patient-mismatch"),
    "other-frame-of-reference": BadDicom(
        _edit(_last, FrameOfReferenceUID="1.2.3.4"), "frame-of-reference"
    ),
    "other-matrix": BadDicom(_edit(_last, Rows=23), "shape-mismatch"),
    "other-pixel-spacing": BadDicom(_edit(_last, PixelSpacing=["1.5", "1.5"]), "spacing-mismatch"),
    "other-orientation": BadDicom(
        _edit(_last, ImageOrientationPatient=["0", "1", "0", "1", "0", "0"]),
        "orientation-mismatch",
    ),
    "not-orthonormal": BadDicom(
        _edit_all(ImageOrientationPatient=["1", "0", "0", "1", "0", "0"]), "bad-geometry"
    ),
    "no-trigger-time": BadDicom(_edit(lambda g: g[1][1], TriggerTime=None), "missing-tag"),
    "one-image-missing": BadDicom(_remove_one, "phase-count"),
    "one-slice-missing": BadDicom(_remove_slice, "slice-gap"),
    "duplicate-image": BadDicom(_copy_one, "duplicate-image"),
    "slice-off-the-line": BadDicom(_shift_slice, "slice-shift"),
}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_good_dicom_passes_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _build(tmp_path / "src")
    code, out, err = _run(capsys, "data", "check", str(tmp_path / "src"))
    assert code == 0, out + err
    assert "PROBLEM" not in out and "(dicom)" in out


@pytest.mark.parametrize("name", list(CASES))
def test_check_names_file_and_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    root = tmp_path / "src"
    named = CASES[name].breaker(_build(root))
    code, out, err = _run(capsys, "data", "check", str(root))
    assert code != 0
    problems = [ln for ln in out.splitlines() if ln.startswith("PROBLEM ")]
    assert problems, out + err
    for line in problems:
        assert line.startswith(f"PROBLEM {named}: [{CASES[name].check}] "), line
    assert "Traceback" not in out + err
    assert "Anonymous" not in out + err  # nothing identifying beyond the patient id


@pytest.mark.parametrize(
    "name", ["cut-in-pixels", "one-slice-missing", "no-position", "undecodable-pixels"]
)
def test_prepare_refuses_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    root = tmp_path / "src"
    named = CASES[name].breaker(_build(root))
    code, _, err = _run(capsys, "data", "prepare", str(root), "--out", str(tmp_path / "cache"))
    assert code != 0
    errors = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert errors and all(
        ln.startswith(f"error: {named}: [{CASES[name].check}] ") for ln in errors
    ), err
    assert not (tmp_path / "cache").exists()
