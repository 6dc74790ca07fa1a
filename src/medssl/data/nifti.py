"""Checked NIfTI reading and writing.

Every read decodes all voxels (nibabel is lazy by default, so a truncated file would
otherwise pass unnoticed), reads a ``.gz`` stream to its end so that its length and
CRC are verified, and turns each failure into a one-line
:class:`~medssl.errors.DataError` naming the file and the check. The header is
checked before any voxel buffer is allocated, so a file that declares an absurd
size is refused without exhausting memory.

Axis convention: NIfTI stores ``(X, Y, Z[, T])``; medssl works on ``(Z, Y, X)`` =
``(slices, H, W)``. :func:`to_slices` and :func:`from_slices` convert.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
from nibabel.openers import ImageOpener

from medssl.errors import DataError

#: Largest volume (in voxels) a header may declare before it is refused unread.
MAX_VOXELS = 2**30
_GZIP_CHUNK = 1 << 20
NIFTI_SUFFIXES = (".nii.gz", ".nii")
_READ_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, OSError, ValueError, ImageFileError)


@dataclass(frozen=True)
class NiftiVolume:
    """A decoded NIfTI file in its native ``(X, Y, Z[, T])`` axis order.

    Attributes:
        data: voxel array (float32 when read as image, integer-valued when as label).
        zooms: voxel sizes of the spatial axes ``(sx, sy, sz)`` in mm.
        affine: 4x4 voxel-to-world matrix.
        header: the nibabel header, kept so that writers can copy it (``None`` for a
            volume read from another format, see :mod:`medssl.data.volumes`).
    """

    data: np.ndarray
    zooms: tuple[float, float, float]
    affine: np.ndarray
    header: nib.Nifti1Header | None


def is_nifti(path: Path) -> bool:
    return path.name.endswith(NIFTI_SUFFIXES)


def strip_nifti_suffix(name: str) -> str:
    for suffix in NIFTI_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def check_file_bytes(path: Path) -> None:
    """Cheap checks before parsing: existence, zero bytes, gzip magic."""
    if not path.exists():
        raise DataError(path, "missing-file", "file does not exist")
    if path.stat().st_size == 0:
        raise DataError(path, "empty-file", "file is zero bytes long")
    if path.name.endswith(".gz"):
        with path.open("rb") as fh:
            magic = fh.read(2)
        if magic != b"\x1f\x8b":
            raise DataError(path, "not-gzip", f"named .gz but starts with {magic!r}, not gzip")


def check_gzip_stream(path: Path) -> None:
    """Decompress a ``.gz`` file to its end, so that gzip verifies its length and CRC.

    nibabel reads only the bytes the header declares, so a file that lost its gzip
    trailer, or whose bytes no longer match their CRC, would otherwise be accepted.
    Memory use is one chunk whatever the file's size; other files are left alone.
    """
    if not path.name.endswith(".gz"):
        return
    try:
        with gzip.open(path, "rb") as fh:
            while fh.read(_GZIP_CHUNK):
                pass
    except EOFError as exc:
        raise DataError(path, "truncated", f"gzip stream ends early ({exc})") from exc
    except (zlib.error, OSError) as exc:
        raise DataError(path, "corrupt-gzip", f"gzip stream is damaged ({exc})") from exc


def read_header(path: Path, ndim: int) -> nib.Nifti1Image:
    """Parse the header and check dimensionality and declared size; voxels stay unread.

    Args:
        path: a ``.nii`` or ``.nii.gz`` file.
        ndim: expected number of dimensions (3 for a volume, 4 for a cine series);
            trailing singleton axes beyond it are tolerated.
    """
    check_file_bytes(path)
    try:
        img = nib.load(path, mmap=False)
    except _READ_ERRORS as exc:
        raise DataError(path, "bad-header", f"cannot parse NIfTI header ({exc})") from exc
    shape = tuple(int(s) for s in img.header.get_data_shape())
    core = list(shape)
    while len(core) > ndim and core[-1] == 1:
        core.pop()
    if len(core) != ndim:
        kind = {3: "3D volume", 4: "4D series"}.get(ndim, f"{ndim}D")
        raise DataError(path, "dimensionality", f"expected a {kind}, header says shape {shape}")
    if any(s <= 0 for s in shape):
        raise DataError(path, "absurd-size", f"header declares a non-positive size {shape}")
    n_vox = int(np.prod(np.asarray(shape, dtype=np.float64)))
    if n_vox > MAX_VOXELS:
        raise DataError(
            path,
            "absurd-size",
            f"header declares {shape} = {n_vox:.3g} voxels; refusing to allocate",
        )
    zooms = _stored_zooms(path, img)
    if len(zooms) < 3 or not all(np.isfinite(z) and z != 0 for z in zooms):
        raise DataError(path, "bad-spacing", f"voxel sizes {tuple(zooms)} are not positive")
    return img


def _stored_zooms(path: Path, img: nib.Nifti1Image) -> tuple[float, ...]:
    """``pixdim[1:4]`` as stored: nibabel's load silently turns a 0 into 1 (and takes
    the absolute value of negatives, which is kept), so re-read the header unfixed."""
    try:
        with ImageOpener(path) as fh:
            raw = type(img.header).from_fileobj(fh, check=False)
    except _READ_ERRORS as exc:
        raise DataError(path, "bad-header", f"cannot parse NIfTI header ({exc})") from exc
    return tuple(float(z) for z in raw["pixdim"][1:4])


def volume_ndim(path: Path) -> int:
    """3 or 4 from the header alone; 3 when the header is unreadable (reading the file
    with :func:`read_nifti` then reports the problem)."""
    try:
        read_header(path, 3)
    except DataError as err:
        return 4 if err.check == "dimensionality" else 3
    return 3


def frames_of(data: np.ndarray) -> list[np.ndarray]:
    """The 3D volumes of a ``(X, Y, Z)`` or ``(X, Y, Z, T)`` array."""
    return [data] if data.ndim == 3 else [data[..., t] for t in range(data.shape[3])]


def read_nifti(path: Path, ndim: int = 3, *, as_label: bool = False) -> NiftiVolume:
    """Read a whole NIfTI file with every check of this module.

    Args:
        path: file to read.
        ndim: 3 or 4 (see :func:`read_header`).
        as_label: keep the stored values (checked later for integrality) instead of
            converting to float32 intensities.

    Raises:
        DataError: on any failed check; the message names the file.
    """
    img = read_header(path, ndim)
    check_gzip_stream(path)
    try:
        data = np.asanyarray(img.dataobj) if as_label else img.get_fdata(dtype=np.float32)
    except _READ_ERRORS as exc:
        raise DataError(path, "truncated", f"voxel data cannot be read in full ({exc})") from exc
    while data.ndim > ndim and data.shape[-1] == 1:
        data = data[..., 0]
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    return NiftiVolume(np.asarray(data), zooms, np.asarray(img.affine), img.header)


def to_slices(arr: np.ndarray) -> np.ndarray:
    """``(X, Y, Z)`` → ``(Z, Y, X)``, contiguous."""
    return np.ascontiguousarray(np.transpose(arr, (2, 1, 0)))


def from_slices(arr: np.ndarray) -> np.ndarray:
    """``(Z, Y, X)`` → ``(X, Y, Z)``, contiguous; inverse of :func:`to_slices`."""
    return np.ascontiguousarray(np.transpose(arr, (2, 1, 0)))


def spacing_from_zooms(zooms: tuple[float, float, float]) -> tuple[float, float, float]:
    """NIfTI ``(sx, sy, sz)`` → medssl ``(slice, row, column)`` = ``(sz, sy, sx)``."""
    return (float(zooms[2]), float(zooms[1]), float(zooms[0]))


def write_nifti(
    path: Path,
    data: np.ndarray,
    affine: np.ndarray,
    header: nib.Nifti1Header | None = None,
    dtype: np.dtype | type | None = None,
) -> None:
    """Write ``data`` (native ``(X, Y, Z[, T])`` order) with the given affine/header.

    ``.nii.gz`` output is deterministic (nibabel writes gzip with a zero mtime).
    """
    hdr = header.copy() if header is not None else None
    img = nib.Nifti1Image(data if dtype is None else data.astype(dtype), affine, hdr)
    if dtype is not None:
        img.set_data_dtype(dtype)
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, path)
