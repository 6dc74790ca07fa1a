"""Readers behind one interface, chosen by what a folder holds (or forced by name)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from medssl.data.readers.acdc import find_patient_dirs, read_acdc
from medssl.data.readers.base import Source
from medssl.data.readers.dicom import holds_dicom, read_dicom
from medssl.data.readers.dicom_labels import is_label_volume
from medssl.data.readers.folder import read_nifti_folder
from medssl.data.readers.h5 import read_h5
from medssl.data.readers.image2d import IMAGE_DIR, holds_image_folder, read_image_folder
from medssl.data.readers.nnunet import read_nnunet
from medssl.data.volumes import is_volume
from medssl.errors import DataError

READERS: dict[str, Callable[[Path], Source]] = {
    "acdc": read_acdc,
    "h5": read_h5,
    "nnunet": read_nnunet,
    "image2d": read_image_folder,
    "nifti-folder": read_nifti_folder,
    "dicom": read_dicom,
}


def detect_format(root: Path) -> str:
    """Name the reader for ``root``: nnU-Net, ACDC, h5, 2D image folder, a plain volume
    folder (NIfTI, NRRD, MHA) or DICOM, in that order.

    An ``images/`` folder of PNG/TIFF slices beside volume files is refused as ambiguous
    rather than guessed; DICOM files whose only volume files are ``*_gt`` label maps
    are DICOM (the labels of its stacks).
    """
    if not root.is_dir():
        raise DataError(root, "missing-source", "is not a folder")
    if (root / "dataset.json").exists():
        return "nnunet"
    if find_patient_dirs(root):
        return "acdc"
    if any(root.glob("*.h5")):
        return "h5"
    volumes = [p for p in root.rglob("*") if p.is_file() and is_volume(p)]
    if volumes and all(is_label_volume(p) for p in volumes) and holds_dicom(root):
        return "dicom"  # NIfTI label volumes beside DICOM images
    has_volumes = bool(volumes)
    if holds_image_folder(root):
        if has_volumes:
            raise DataError(
                root,
                "ambiguous-format",
                f"{IMAGE_DIR}/ holds 2D slices but volume files lie below too;"
                " choose with --format image2d or --format nifti-folder",
            )
        return "image2d"
    if has_volumes:
        return "nifti-folder"
    if holds_dicom(root):
        return "dicom"
    raise DataError(
        root,
        "unknown-format",
        "no dataset.json, patient*/Info.cfg, *.h5, images/*.png|tif, NIfTI/NRRD/MHA or"
        " DICOM files found; force one with --format",
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
