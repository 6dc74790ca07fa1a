"""One entry point for 3D/4D volume files, whatever their format.

NIfTI (``.nii``, ``.nii.gz``) is read with nibabel (:mod:`medssl.data.nifti`), NRRD and
MetaImage (``.nrrd``, ``.mha``) with SimpleITK (:mod:`medssl.data.itk_volume`); both
come back in NIfTI's ``(X, Y, Z[, T])`` order with a RAS affine, so readers need not
know which format a file is in.
"""

from __future__ import annotations

from pathlib import Path

from medssl.data.itk_volume import ITK_SUFFIXES, is_itk_volume, itk_ndim, read_itk
from medssl.data.nifti import NIFTI_SUFFIXES, NiftiVolume, is_nifti, read_nifti, volume_ndim

#: Every suffix read as a volume.
VOLUME_SUFFIXES = (*NIFTI_SUFFIXES, *ITK_SUFFIXES)


def is_volume(path: Path) -> bool:
    """True for a file named as NIfTI, NRRD or MHA."""
    return is_nifti(path) or is_itk_volume(path)


def strip_volume_suffix(name: str) -> str:
    """``"scan3.nii.gz"`` / ``"scan3.nrrd"`` → ``"scan3"``; other names unchanged."""
    for suffix in VOLUME_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_volume(path: Path, ndim: int = 3, *, as_label: bool = False) -> NiftiVolume:
    """Read a NIfTI, NRRD or MHA file with its format's checks (see the module docstring).

    Raises:
        DataError: on any failed check; the message names the file.
    """
    if is_itk_volume(path):
        return read_itk(path, ndim, as_label=as_label)
    return read_nifti(path, ndim, as_label=as_label)


def file_ndim(path: Path) -> int:
    """3 or 4 from the header alone (3 when unreadable: reading it reports why)."""
    return itk_ndim(path) if is_itk_volume(path) else volume_ndim(path)
