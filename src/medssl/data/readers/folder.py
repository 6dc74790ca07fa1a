"""Reader for a plain folder of volumes: an unlabelled pool for pretraining.

Every NIfTI (``*.nii``, ``*.nii.gz``), NRRD (``*.nrrd``) or MetaImage (``*.mha``) file
below the root is one record (format name ``nifti-folder``, kept for the NRRD/MHA
files too); a 3D file is one unlabelled volume, a 4D file ``(X, Y, Z, T)`` a series of
``T`` volumes. The patient id is the file name without its suffix (``_frameYY``
stripped).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medssl.artifacts.labels import UNLABELLED
from medssl.data.case import Case, VolumeRef
from medssl.data.checks import check_finite
from medssl.data.nifti import frames_of, spacing_from_zooms, to_slices
from medssl.data.readers.base import Source, split_frame_name
from medssl.data.volumes import file_ndim, is_volume, read_volume, strip_volume_suffix


def _load_any(ref: VolumeRef) -> Iterator[Case]:
    (path,) = ref.files
    ndim = 4 if ref.kind == "series" else 3
    vol = read_volume(path, ndim)
    check_finite(path, vol.data)
    spacing = spacing_from_zooms(vol.zooms)
    frames = frames_of(vol.data)
    for t, data in enumerate(frames):
        frame = ref.frame if ndim == 3 else t + 1
        yield Case(
            ref.patient_id,
            to_slices(data),
            None,
            spacing,
            ref.phase,
            frame,
            ref.meta,
            ref.files,
            vol.affine,
        )


def read_nifti_folder(root: Path) -> Source:
    """List every NIfTI, NRRD or MHA file below ``root`` as unlabelled volumes."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and is_volume(p))
    refs = []
    for f in files:
        pid, frame = split_frame_name(strip_volume_suffix(f.name))
        kind = "series" if file_ndim(f) == 4 else "unlabelled"
        refs.append(VolumeRef(pid, kind, (f,), _load_any, frame=frame))
    return Source(root, "nifti-folder", refs, UNLABELLED)
