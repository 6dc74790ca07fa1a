"""Real DICOM files for tests, written with pydicom from NIfTI-style arrays.

A cine stack ``(X, Y, Z, T)`` with its RAS affine becomes one single-frame MR image
per slice and phase, the way scanners export short-axis cine: pixel rows run along
the affine's second axis, columns along its first, ``ImagePositionPatient`` and
``ImageOrientationPatient`` are in LPS, and ``TriggerTime`` orders the phases. File
names are shuffled so that no reader can rely on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from medssl.data.phantom import generate_phantom

LPS = np.diag([-1.0, -1.0, 1.0])


def _ds(text: float) -> str:
    """A DS value (at most 16 characters) for ``text``."""
    out = f"{text:.6f}"
    return out if len(out) <= 16 else f"{text:.6g}"


def geometry_tags(affine: np.ndarray, k: int) -> dict[str, list[str]]:
    """``ImagePositionPatient``, ``ImageOrientationPatient``, ``PixelSpacing`` of slice
    ``k`` of a volume whose RAS affine maps voxel ``(column, row, slice)`` to mm."""
    lin = LPS @ affine[:3, :3]
    origin = LPS @ (affine[:3, :3] @ np.array([0.0, 0.0, k]) + affine[:3, 3])
    col_mm, row_mm = np.linalg.norm(lin[:, 0]), np.linalg.norm(lin[:, 1])
    iop = [*(lin[:, 0] / col_mm), *(lin[:, 1] / row_mm)]
    return {
        "ImagePositionPatient": [_ds(v) for v in origin],
        "ImageOrientationPatient": [_ds(v) for v in iop],
        "PixelSpacing": [_ds(row_mm), _ds(col_mm)],
    }


def _dataset(
    pixels: np.ndarray, study: dict[str, str], series_uid: str, series_number: int
) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    for key, value in study.items():
        setattr(ds, key, value)
    ds.Modality = "MR"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.Manufacturer = "medssl-tests"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.PixelData = np.ascontiguousarray(pixels.astype(np.int16)).tobytes()
    return ds


def write_cine_dicom(
    folder: Path,
    data: np.ndarray,
    affine: np.ndarray,
    patient_id: str,
    *,
    frame_ms: float = 40.0,
    series_per_slice: bool = False,
    seed: int = 0,
    tags: dict[str, str] | None = None,
) -> list[list[Path]]:
    """Write ``data`` ``(X, Y, Z, T)`` (or ``(X, Y, Z)``) as single-frame MR DICOM files.

    Args:
        folder: output folder (created).
        data: integer voxels in NIfTI order.
        affine: RAS voxel-to-mm affine of ``data``.
        patient_id: the ``PatientID`` written.
        frame_ms: ``TriggerTime`` step between phases (no TriggerTime for 3D data).
        series_per_slice: one series per slice position (as many scanners export
            short-axis cine) instead of one series for the whole stack.
        seed: seed of the shuffled file names.
        tags: further header elements of every file (patient age, name, ...).

    Returns:
        ``paths[t][k]``: the file of phase ``t`` and slice ``k``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    cine = data if data.ndim == 4 else data[..., None]
    n_z, n_t = cine.shape[2], cine.shape[3]
    study = {
        "PatientID": patient_id,
        "PatientName": "Anonymous^Phantom",
        "PatientBirthDate": "",
        "PatientSex": "O",
        "StudyInstanceUID": generate_uid(),
        "StudyDate": "20240101",
        "StudyTime": "120000",
        "StudyID": "1",
        "AccessionNumber": "",
        "ReferringPhysicianName": "",
        "FrameOfReferenceUID": generate_uid(),
        "SliceThickness": _ds(float(np.linalg.norm(affine[:3, 2]))),
        **(tags or {}),
    }
    series = [generate_uid() for _ in range(n_z if series_per_slice else 1)]
    names = np.random.default_rng(seed).permutation(n_z * n_t)
    paths: list[list[Path]] = [[] for _ in range(n_t)]
    for t in range(n_t):
        for k in range(n_z):
            s = k if series_per_slice else 0
            ds = _dataset(cine[:, :, k, t].T, study, series[s], 100 + s)
            for key, value in geometry_tags(affine, k).items():
                setattr(ds, key, value)
            if data.ndim == 4:
                ds.TriggerTime = _ds(t * frame_ms)
            ds.InstanceNumber = t * n_z + k + 1
            path = folder / f"IM{names[t * n_z + k]:05d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            paths[t].append(path)
    return paths


def phantom_dicom(
    root: Path, patients: Sequence[int] = (1,), n_frames: int = 3, **kwargs
) -> tuple[Path, Path]:
    """The phantom (ACDC layout, under ``root / "nifti"``) and its cine series written as
    DICOM under ``root / "dicom" / patientNNN``; returns ``(nifti_root, dicom_root)``."""
    import nibabel as nib

    nifti = root / "nifti"
    generate_phantom(nifti, max(patients), seed=0, n_frames=n_frames, workers=1)
    dicom = root / "dicom"
    for p in patients:
        pid = f"patient{p:03d}"
        img = nib.load(nifti / "training" / pid / f"{pid}_4d.nii.gz")
        data = np.asanyarray(img.dataobj)
        write_cine_dicom(dicom / pid, data, img.affine, pid, seed=p, **kwargs)
    return nifti, dicom


def _item(**tags: object) -> Dataset:
    item = Dataset()
    for key, value in tags.items():
        setattr(item, key, value)
    return item


def write_enhanced_dicom(
    path: Path,
    data: np.ndarray,
    affine: np.ndarray,
    patient_id: str,
    *,
    frame_ms: float = 40.0,
    rescale: tuple[float, float] = (1.0, 0.0),
    seed: int = 0,
    tags: dict[str, str] | None = None,
) -> Path:
    """Write ``data`` ``(X, Y, Z, T)`` as one Enhanced MR Image Storage file: one frame
    per slice and phase, in shuffled order, with the geometry in the functional groups
    (orientation, pixel measures and rescale shared; position and trigger delay per
    frame), as enhanced cine exports carry it."""
    from pydicom.uid import EnhancedMRImageStorage

    n_z, n_t = data.shape[2], data.shape[3]
    order = np.random.default_rng(seed).permutation(n_z * n_t)
    tags0 = geometry_tags(affine, 0)
    ds = _dataset(np.zeros(data.shape[1::-1]), {}, generate_uid(), 200)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = EnhancedMRImageStorage
    ds.PatientID, ds.StudyInstanceUID = patient_id, generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.NumberOfFrames = n_z * n_t
    for key, value in (tags or {}).items():
        setattr(ds, key, value)
    ds.SharedFunctionalGroupsSequence = [
        _item(
            PlaneOrientationSequence=[
                _item(ImageOrientationPatient=tags0["ImageOrientationPatient"])
            ],
            PixelMeasuresSequence=[
                _item(
                    PixelSpacing=tags0["PixelSpacing"],
                    SliceThickness=_ds(float(np.linalg.norm(affine[:3, 2]))),
                )
            ],
            PixelValueTransformationSequence=[
                _item(RescaleSlope=_ds(rescale[0]), RescaleIntercept=_ds(rescale[1]))
            ],
        )
    ]
    frames, per_frame = [], []
    for i in order:
        t, k = divmod(int(i), n_z)
        frames.append(data[:, :, k, t].T)
        position = geometry_tags(affine, k)["ImagePositionPatient"]
        per_frame.append(
            _item(
                PlanePositionSequence=[_item(ImagePositionPatient=position)],
                CardiacSynchronizationSequence=[_item(NominalCardiacTriggerDelayTime=t * frame_ms)],
            )
        )
    ds.PerFrameFunctionalGroupsSequence = per_frame
    ds.PixelData = np.ascontiguousarray(np.stack(frames).astype(np.int16)).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
