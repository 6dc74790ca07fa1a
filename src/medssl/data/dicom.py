"""Checked DICOM header reading (pydicom): the facts of one single-frame image.

Every failure is a one-line :class:`~medssl.errors.DataError` naming the file and the
check. Enhanced multi-frame files are :mod:`medssl.data.dicom_enhanced`, pixels
:mod:`medssl.data.dicom_pixels`, and the stack that images form (order, phases,
affine) :mod:`medssl.data.dicom_stack`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError

from medssl.data.case import PatientMeta
from medssl.data.dicom_patient import patient_meta
from medssl.errors import DataError

#: Suffixes that mark a file as meant to be DICOM (others must carry the DICM magic).
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
#: Cross-sectional image SOP classes (others, such as segmentations, reports, secondary
#: captures or DICOMDIR, are skipped).
IMAGE_SOP_CLASSES = frozenset(
    str(uid)
    for uid in (
        pydicom.uid.MRImageStorage,
        pydicom.uid.CTImageStorage,
        pydicom.uid.PositronEmissionTomographyImageStorage,
        pydicom.uid.EnhancedMRImageStorage,
        pydicom.uid.EnhancedCTImageStorage,
        pydicom.uid.LegacyConvertedEnhancedMRImageStorage,
        pydicom.uid.LegacyConvertedEnhancedCTImageStorage,
        pydicom.uid.LegacyConvertedEnhancedPETImageStorage,
    )
)
#: DICOM Segmentation Storage: read as labels of the stack it references.
SEGMENTATION_SOP_CLASS = str(pydicom.uid.SegmentationStorage)
_REQUIRED = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")
#: Largest image (in pixels) a header may declare before it is refused unread.
MAX_PIXELS = 2**26


@dataclass(frozen=True)
class DicomImage:
    """Header facts of one single-frame DICOM image (no pixels read).

    Attributes:
        path: the file.
        patient_id: ``PatientID``.
        study_uid, series_uid, frame_of_reference: the UIDs that group images.
        series_number: ``SeriesNumber`` (``None`` when absent), for messages.
        sop_uid: ``SOPInstanceUID``.
        rows, columns: pixel matrix.
        pixel_spacing: ``(row, column)`` spacing in mm (DICOM's ``PixelSpacing`` order).
        orientation: ``ImageOrientationPatient``: row direction then column direction (LPS).
        position: ``ImagePositionPatient`` of the first pixel's centre (LPS, mm).
        trigger_time: ``TriggerTime`` in ms, ``None`` when absent.
        thickness: ``SpacingBetweenSlices`` or else ``SliceThickness`` (mm), for a
            single-slice stack.
        frame: 0-based frame of an enhanced multi-frame file, ``None`` for a
            single-frame image (see :mod:`medssl.data.dicom_enhanced`).
        rescale: ``(slope, intercept)`` of that frame's pixel value transformation;
            ``None``: the dataset's modality LUT.
        patient: age, sex, height and weight from the header
            (:mod:`medssl.data.dicom_patient`); nothing else about the patient is kept.
    """

    path: Path
    patient_id: str
    study_uid: str
    series_uid: str
    frame_of_reference: str
    series_number: int | None
    sop_uid: str
    rows: int
    columns: int
    pixel_spacing: tuple[float, float]
    orientation: tuple[float, ...]
    position: tuple[float, float, float]
    trigger_time: float | None
    thickness: float | None
    frame: int | None = None
    rescale: tuple[float, float] | None = None
    patient: PatientMeta = field(default_factory=PatientMeta, compare=False)


def is_dicom_file(path: Path) -> bool:
    """True for a file named as DICOM or starting with the ``DICM`` preamble."""
    if path.name.lower().endswith(DICOM_SUFFIXES):
        return True
    try:
        return pydicom.misc.is_dicom(path)
    except OSError:
        return False


def _floats(path: Path, ds: pydicom.Dataset, key: str, n: int) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in ds[key].value)
    except (TypeError, ValueError) as exc:
        raise DataError(path, "bad-geometry", f"{key} is not numeric ({exc})") from exc
    if len(values) != n or not all(math.isfinite(v) for v in values):
        raise DataError(path, "bad-geometry", f"{key} must hold {n} finite numbers: {values}")
    return values


def _optional_float(ds: pydicom.Dataset, key: str) -> float | None:
    value = ds.get(key)
    if value is None or value == "":
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _sop_class(ds: pydicom.Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    return str(ds.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID") if meta else "") or "")


def _read_header(path: Path) -> pydicom.Dataset:
    """Every element of the file, large values (the pixels) left unread."""
    if path.stat().st_size == 0:
        raise DataError(path, "empty-file", "file is zero bytes long")
    try:
        return pydicom.dcmread(path, defer_size=4096)
    except InvalidDicomError as exc:
        raise DataError(path, "not-dicom", f"not a DICOM file ({exc})") from exc
    except (OSError, EOFError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise DataError(path, "unreadable", f"cannot parse the DICOM header ({exc})") from exc


def read_header(path: Path) -> pydicom.Dataset:
    """The file's header (pixels left unread); DataError when it cannot be parsed."""
    return _read_header(path)


def is_segmentation(ds: pydicom.Dataset) -> bool:
    """True for a DICOM Segmentation (SEG) instance."""
    return _sop_class(ds) == SEGMENTATION_SOP_CLASS


def parse_header(path: Path) -> DicomImage | None:
    """Read and check the header of one file: its (first) image, or ``None`` for a file
    that is not a cross-sectional image (see :data:`IMAGE_SOP_CLASSES`) or is a localizer.

    Raises:
        DataError: see :func:`images_from_header`.
    """
    images = images_from_header(path, _read_header(path))
    return images[0] if images else None


def images_from_header(path: Path, ds: pydicom.Dataset) -> list[DicomImage]:
    """The images of a header read with :func:`read_header`: one for a single-frame
    file, one per frame for an enhanced multi-frame file, none for other objects.

    Raises:
        DataError: unreadable or truncated file, missing geometry tags, a multi-frame
            image without per-frame functional groups, an absurd matrix or non-positive
            spacing; the message names the file (and the frame).
    """
    sop_class = _sop_class(ds)
    if not sop_class:
        raise DataError(path, "unreadable", "no SOP class: the file meta or header is cut short")
    if sop_class not in IMAGE_SOP_CLASSES or "LOCALIZER" in ds.get("ImageType", []):
        return []
    if "PixelData" not in ds:
        raise DataError(path, "truncated", "the file ends before its pixel data")
    common = _common_fields(path, ds)
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        return _frame_images(path, ds, common)
    missing = [k for k in _REQUIRED if not ds.get(k)]
    if missing:
        raise DataError(path, "missing-tag", f"no {', '.join(missing)}")
    return [
        DicomImage(
            **common,
            **_plane(path, ds, ds, ds),
            trigger_time=_optional_float(ds, "TriggerTime"),
        )
    ]


def _common_fields(path: Path, ds: pydicom.Dataset) -> dict:
    """Patient, UIDs and matrix: what every frame of a file shares."""
    missing = [k for k in ("PatientID", "Rows", "Columns") if not ds.get(k)]
    if missing:
        raise DataError(path, "missing-tag", f"no {', '.join(missing)}")
    rows, cols = int(ds.Rows), int(ds.Columns)
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    if (
        rows <= 0
        or cols <= 0
        or rows * cols > MAX_PIXELS
        or n_frames * rows * cols > 16 * MAX_PIXELS
    ):
        raise DataError(
            path, "absurd-size", f"declares {n_frames} frame(s) of {rows} x {cols}; refusing"
        )
    number = ds.get("SeriesNumber")
    return {
        "path": path,
        "patient_id": str(ds.PatientID),
        "study_uid": str(ds.get("StudyInstanceUID", "")),
        "series_uid": str(ds.get("SeriesInstanceUID", "")),
        "frame_of_reference": str(ds.get("FrameOfReferenceUID", "")),
        "series_number": int(number) if number not in (None, "") else None,
        "sop_uid": str(ds.get("SOPInstanceUID", "")),
        "rows": rows,
        "columns": cols,
        "patient": patient_meta(path, ds),
    }


def _plane(
    path: Path, position: pydicom.Dataset, orientation: pydicom.Dataset, measures: pydicom.Dataset
) -> dict:
    """Checked geometry of one image plane from the items that hold each part."""
    spacing = _floats(path, measures, "PixelSpacing", 2)
    if not all(s > 0 for s in spacing):
        raise DataError(path, "bad-spacing", f"PixelSpacing {spacing} is not positive")
    return {
        "pixel_spacing": (spacing[0], spacing[1]),
        "orientation": _floats(path, orientation, "ImageOrientationPatient", 6),
        "position": _floats(path, position, "ImagePositionPatient", 3),
        "thickness": _optional_float(measures, "SpacingBetweenSlices")
        or _optional_float(measures, "SliceThickness"),
    }


def _group_item(
    per: pydicom.Dataset, shared: pydicom.Dataset | None, name: str
) -> pydicom.Dataset | None:
    """The first item of functional group ``name``, per-frame before shared."""
    for group in (per, shared):
        if group is not None and group.get(name):
            return group[name].value[0]
    return None


_FRAME_GROUPS = {
    "PlanePositionSequence": "ImagePositionPatient",
    "PlaneOrientationSequence": "ImageOrientationPatient",
    "PixelMeasuresSequence": "PixelSpacing",
}


def _frame_images(path: Path, ds: pydicom.Dataset, common: dict) -> list[DicomImage]:
    """One image per frame of an enhanced multi-frame file, from its functional groups:
    plane position, orientation and pixel measures, the trigger delay of the cardiac
    synchronisation, the pixel value transformation."""
    n = int(ds.NumberOfFrames)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    if len(per_frame) != n:
        raise DataError(
            path, "multi-frame", f"{n} frames but {len(per_frame)} per-frame functional groups"
        )
    shared = (ds.get("SharedFunctionalGroupsSequence") or [None])[0]
    images = []
    for i, per in enumerate(per_frame):
        items = {name: _group_item(per, shared, name) for name in _FRAME_GROUPS}
        missing = [tag for name, tag in _FRAME_GROUPS.items() if not (items[name] or {}).get(tag)]
        if missing:
            raise DataError(path, "missing-tag", f"frame {i + 1}: no {', '.join(missing)}")
        cardiac = _group_item(per, shared, "CardiacSynchronizationSequence")
        transform = _group_item(per, shared, "PixelValueTransformationSequence")
        slope = _optional_float(transform, "RescaleSlope") if transform else None
        intercept = _optional_float(transform, "RescaleIntercept") if transform else None
        plane = _plane(
            path,
            items["PlanePositionSequence"],
            items["PlaneOrientationSequence"],
            items["PixelMeasuresSequence"],
        )
        images.append(
            DicomImage(
                **common,
                **plane,
                trigger_time=_optional_float(cardiac, "NominalCardiacTriggerDelayTime")
                if cardiac
                else None,
                frame=i,
                rescale=(1.0 if slope is None else slope, intercept or 0.0),
            )
        )
    return images
