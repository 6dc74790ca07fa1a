"""Checked DICOM reading (pydicom): the header facts of one image, and its pixels.

Every failure is a one-line :class:`~medssl.errors.DataError` naming the file and the
check. The stack that images form (order, phases, affine) is
:mod:`medssl.data.dicom_stack`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from medssl.data.checks import check_finite
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
_REQUIRED = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")
#: Largest image (in pixels) a header may declare before it is refused unread.
MAX_PIXELS = 2**26
_PIXEL_ERRORS = (
    NotImplementedError,
    RuntimeError,
    OSError,
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
)


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


def parse_header(path: Path) -> DicomImage | None:
    """Read and check the header of one file; ``None`` for a file that is not a
    cross-sectional image (see :data:`IMAGE_SOP_CLASSES`) or is a localizer.

    Raises:
        DataError: unreadable or truncated file, missing geometry tags, multi-frame
            image, an absurd matrix or non-positive spacing; the message names the file.
    """
    ds = _read_header(path)
    sop_class = _sop_class(ds)
    if not sop_class:
        raise DataError(path, "unreadable", "no SOP class: the file meta or header is cut short")
    if sop_class not in IMAGE_SOP_CLASSES or "LOCALIZER" in ds.get("ImageType", []):
        return None
    if "PixelData" not in ds:
        raise DataError(path, "truncated", "the file ends before its pixel data")
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        raise DataError(
            path, "multi-frame", "enhanced (multi-frame) images are not read; export single frames"
        )
    missing = [k for k in (*_REQUIRED, "PatientID", "Rows", "Columns") if not ds.get(k)]
    if missing:
        raise DataError(path, "missing-tag", f"no {', '.join(missing)}")
    rows, cols = int(ds.Rows), int(ds.Columns)
    if rows <= 0 or cols <= 0 or rows * cols > MAX_PIXELS:
        raise DataError(path, "absurd-size", f"declares a {rows} x {cols} matrix; refusing")
    spacing = _floats(path, ds, "PixelSpacing", 2)
    if not all(s > 0 for s in spacing):
        raise DataError(path, "bad-spacing", f"PixelSpacing {spacing} is not positive")
    number = ds.get("SeriesNumber")
    return DicomImage(
        path=path,
        patient_id=str(ds.PatientID),
        study_uid=str(ds.get("StudyInstanceUID", "")),
        series_uid=str(ds.get("SeriesInstanceUID", "")),
        frame_of_reference=str(ds.get("FrameOfReferenceUID", "")),
        series_number=int(number) if number not in (None, "") else None,
        sop_uid=str(ds.get("SOPInstanceUID", "")),
        rows=rows,
        columns=cols,
        pixel_spacing=(spacing[0], spacing[1]),
        orientation=_floats(path, ds, "ImageOrientationPatient", 6),
        position=_floats(path, ds, "ImagePositionPatient", 3),  # type: ignore[arg-type]
        trigger_time=_optional_float(ds, "TriggerTime"),
        thickness=_optional_float(ds, "SpacingBetweenSlices")
        or _optional_float(ds, "SliceThickness"),
    )


def read_pixels(image: DicomImage) -> np.ndarray:
    """Decode one image: ``(rows, columns)`` float32 after the modality LUT (rescale).

    Raises:
        DataError: truncated or undecodable pixel data, or a matrix other than the header's.
    """
    path = image.path
    try:
        ds = pydicom.dcmread(path)
    except (OSError, EOFError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise DataError(path, "truncated", f"cannot be read in full ({exc})") from exc
    try:
        values = pydicom.pixels.apply_modality_lut(ds.pixel_array, ds)
    except _PIXEL_ERRORS as exc:
        syntax = ds.file_meta.get("TransferSyntaxUID")
        if syntax is not None and syntax.is_compressed:
            raise DataError(
                path, "pixel-data", f"cannot decode {syntax.name} pixel data ({exc})"
            ) from exc
        raise DataError(path, "truncated", f"pixel data cannot be read in full ({exc})") from exc
    if values.shape != (image.rows, image.columns):
        raise DataError(
            path,
            "shape-mismatch",
            f"pixels {values.shape} != header {image.rows} x {image.columns}",
        )
    values = np.asarray(values, dtype=np.float32)
    check_finite(path, values)
    return values
