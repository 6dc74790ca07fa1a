"""Reader for preprocessed h5 volumes (``patientXXX_frameYY.h5`` with ``image``, ``label``).

This is the layout of the semi-supervised ACDC literature (e.g. WSL4MIS, SSL4MIS):
one file per labelled 3D frame, datasets shaped ``(slices, H, W)``. These copies have
no voxel spacing (an optional ``spacing`` attribute of the file or of ``image`` is
used when present), no ``Info.cfg`` and no cine series; of a patient's two frames the
lower-numbered one is end-diastolic.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from medssl.artifacts.labels import ACDC_LABELS
from medssl.data.case import Case, VolumeRef
from medssl.data.checks import check_finite, check_label_values, check_same_shape
from medssl.data.nifti import check_file_bytes
from medssl.data.readers.base import Source, phases_by_frame_order, split_frame_name
from medssl.errors import DataError

#: Largest dataset (in elements) an h5 file may declare before it is refused unread.
MAX_ELEMENTS = 2**30


def _read_dataset(path: Path, fh: h5py.File, name: str) -> np.ndarray:
    if name not in fh:
        raise DataError(path, "missing-dataset", f"no '{name}' dataset (has {sorted(fh.keys())})")
    ds = fh[name]
    if not isinstance(ds, h5py.Dataset) or ds.ndim != 3:
        raise DataError(
            path, "dimensionality", f"'{name}' must be 3D (slices, H, W), got {ds.shape}"
        )
    if int(np.prod(ds.shape, dtype=np.float64)) > MAX_ELEMENTS:
        raise DataError(path, "absurd-size", f"'{name}' declares shape {ds.shape}; refusing")
    return ds[()]


def _spacing(fh: h5py.File) -> tuple[float, float, float] | None:
    for obj in (fh, fh.get("image")):
        if obj is not None and "spacing" in obj.attrs:
            sp = tuple(float(s) for s in np.asarray(obj.attrs["spacing"]).ravel()[:3])
            if len(sp) == 3 and all(s > 0 for s in sp):
                return sp  # type: ignore[return-value]
    return None


def _load_h5(ref: VolumeRef) -> Iterator[Case]:
    (path,) = ref.files
    check_file_bytes(path)
    try:
        with h5py.File(path, "r") as fh:
            image = _read_dataset(path, fh, "image").astype(np.float32, copy=False)
            label = _read_dataset(path, fh, "label")
            spacing = _spacing(fh)
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise DataError(path, "unreadable", f"not a readable HDF5 file ({exc})") from exc
    check_finite(path, image)
    check_same_shape(path, image.shape, label.shape)
    label = check_label_values(path, label, ACDC_LABELS.values)
    yield Case(ref.patient_id, image, label, spacing, ref.phase, ref.frame, ref.meta, ref.files)


def read_h5(root: Path) -> Source:
    """List ``*.h5`` volumes directly under ``root``."""
    files = sorted(root.glob("*.h5"))
    names = [split_frame_name(f.stem) for f in files]
    phases = phases_by_frame_order(names)
    refs = [
        VolumeRef(pid, "labelled", (f,), _load_h5, phases[(pid, frame)], frame)
        for f, (pid, frame) in zip(files, names, strict=True)
    ]
    return Source(root, "h5", refs, ACDC_LABELS, spacing_known=False)
