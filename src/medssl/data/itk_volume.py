"""Checked reading of NRRD and MetaImage (``.mha``) volumes with SimpleITK.

The volume comes back as a :class:`~medssl.data.nifti.NiftiVolume` in NIfTI's
``(X, Y, Z[, T])`` axis order with the affine a NIfTI file of the same image carries:
ITK's geometry (origin, direction cosines, spacing) lives in DICOM's LPS patient space,
and is flipped to RAS as nibabel reports it, so that a volume written by SimpleITK as
NIfTI, NRRD or MHA reads back with the same voxels, spacing and affine.

Only single-file formats are read: a detached header (``.mhd`` + ``.raw``, ``.nhdr``)
names a second file that the cache's fingerprint would not follow. The header is
checked (dimensionality, size, spacing, one component per voxel) before any voxel is
read, and each failure is a one-line :class:`~medssl.errors.DataError`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medssl.data.nifti import MAX_VOXELS, NiftiVolume, check_file_bytes
from medssl.errors import DataError

if TYPE_CHECKING:
    import SimpleITK as sitk  # noqa: N813 - the library's own alias

#: File suffixes read with SimpleITK.
ITK_SUFFIXES = (".nrrd", ".mha")
#: DICOM/ITK patient space (LPS) to NIfTI/nibabel world space (RAS).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_POINTER = re.compile(r"\(0x[0-9a-fA-F]+\)")


def is_itk_volume(path: Path) -> bool:
    """True for a file named as NRRD or MetaImage."""
    return path.name.lower().endswith(ITK_SUFFIXES)


def _itk_reason(exc: RuntimeError) -> str:
    """The informative part of a SimpleITK exception (its first line is a source path)."""
    lines = [ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()]
    return _POINTER.sub("", " ".join(lines) or str(exc))


def _sitk():
    """SimpleITK, imported when an NRRD or MetaImage file is read (it is large, and no
    other format needs it)."""
    import SimpleITK

    return SimpleITK


def _reader(path: Path, ndim: int) -> sitk.ImageFileReader:
    """A reader whose header has been read and checked; voxels stay unread."""
    check_file_bytes(path)
    reader = _sitk().ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise DataError(
            path, "bad-header", f"cannot parse the header ({_itk_reason(exc)})"
        ) from exc
    size = tuple(int(s) for s in reader.GetSize())
    core = list(size)
    while len(core) > ndim and core[-1] == 1:
        core.pop()
    if len(core) != ndim:
        kind = {3: "3D volume", 4: "4D series"}.get(ndim, f"{ndim}D")
        raise DataError(path, "dimensionality", f"expected a {kind}, header says size {size}")
    if any(s <= 0 for s in size) or np.prod(np.asarray(size, np.float64)) > MAX_VOXELS:
        raise DataError(path, "absurd-size", f"header declares size {size}; refusing")
    spacing = reader.GetSpacing()[:3]
    if not all(np.isfinite(s) and s > 0 for s in spacing):
        raise DataError(path, "bad-spacing", f"voxel sizes {tuple(spacing)} are not positive")
    if reader.GetNumberOfComponents() != 1:
        raise DataError(
            path,
            "multi-component",
            f"{reader.GetNumberOfComponents()} components per voxel; medssl reads one channel",
        )
    return reader


def itk_ndim(path: Path) -> int:
    """3 or 4 from the header alone; 3 when the header is unreadable (reading the file
    with :func:`read_itk` then reports the problem)."""
    try:
        _reader(path, 3)
    except DataError as err:
        return 4 if err.check == "dimensionality" else 3
    return 3


def itk_affine(image: sitk.Image) -> np.ndarray:
    """RAS affine of voxel ``(i, j, k)`` (ITK's index, NIfTI's ``(X, Y, Z)``)."""
    dim = image.GetDimension()
    direction = np.asarray(image.GetDirection(), float).reshape(dim, dim)[:3, :3]
    lps = np.eye(4)
    lps[:3, :3] = direction * np.asarray(image.GetSpacing()[:3], float)
    lps[:3, 3] = image.GetOrigin()[:3]
    return LPS_TO_RAS @ lps


def read_itk(path: Path, ndim: int = 3, *, as_label: bool = False) -> NiftiVolume:
    """Read a whole NRRD/MHA file with every check of this module.

    Args:
        path: file to read.
        ndim: 3 for a volume, 4 for a series (trailing singleton axes tolerated).
        as_label: keep the stored values instead of converting to float32.

    Returns:
        The volume in ``(X, Y, Z[, T])`` order; ``header`` is ``None``.

    Raises:
        DataError: on any failed check; the message names the file.
    """
    reader = _reader(path, ndim)
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise DataError(
            path, "truncated", f"voxel data cannot be read in full ({_itk_reason(exc)})"
        ) from exc
    data = _sitk().GetArrayFromImage(image)  # (T,) Z, Y, X
    data = np.ascontiguousarray(np.transpose(data, tuple(range(data.ndim))[::-1]))
    while data.ndim > ndim and data.shape[-1] == 1:
        data = data[..., 0]
    if not as_label:
        data = data.astype(np.float32, copy=False)
    zooms = tuple(float(s) for s in image.GetSpacing()[:3])
    return NiftiVolume(data, zooms, itk_affine(image), None)
