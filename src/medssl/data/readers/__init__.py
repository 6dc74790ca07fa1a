"""Readers behind one interface, chosen by what a folder holds (or forced by name)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from medssl.data.nifti import is_nifti
from medssl.data.readers.acdc import find_patient_dirs, read_acdc
from medssl.data.readers.base import Source
from medssl.data.readers.dicom import holds_dicom, read_dicom
from medssl.data.readers.folder import read_nifti_folder
from medssl.data.readers.h5 import read_h5
from medssl.data.readers.nnunet import read_nnunet
from medssl.errors import DataError

READERS: dict[str, Callable[[Path], Source]] = {
    "acdc": read_acdc,
    "h5": read_h5,
    "nnunet": read_nnunet,
    "nifti-folder": read_nifti_folder,
    "dicom": read_dicom,
}


def detect_format(root: Path) -> str:
    """Name the reader for ``root``: nnU-Net, ACDC, h5, a plain NIfTI folder or DICOM."""
    if not root.is_dir():
        raise DataError(root, "missing-source", "is not a folder")
    if (root / "dataset.json").exists():
        return "nnunet"
    if find_patient_dirs(root):
        return "acdc"
    if any(root.glob("*.h5")):
        return "h5"
    if any(is_nifti(p) for p in root.rglob("*")):
        return "nifti-folder"
    if holds_dicom(root):
        return "dicom"
    raise DataError(
        root,
        "unknown-format",
        "no dataset.json, patient*/Info.cfg, *.h5, NIfTI or DICOM files found;"
        " force one with --format",
    )


def open_source(root: str | Path, format: str | None = None) -> Source:
    """List a data source with the reader named by ``format`` or detected from its files."""
    root = Path(root)
    fmt = format or detect_format(root)
    if fmt not in READERS:
        raise DataError(root, "unknown-format", f"format {fmt!r} not in {sorted(READERS)}")
    if not root.is_dir():
        raise DataError(root, "missing-source", "is not a folder")
    return READERS[fmt](root)


__all__ = ["READERS", "Source", "detect_format", "open_source"]
