"""Label maps from DICOM Segmentation (SEG) instances that reference a DICOM stack.

highdicom reads the SEG. Its frames are mapped onto the slices of one cine phase:

* by referenced SOP instance (each SEG frame names the source image it was derived
  from), which is how scanners' and viewers' SEGs are written;
* where the SEG holds no per-frame references (a SEG over a stack merged from one
  series per slice records plane positions instead), by plane position: every slice's
  ``ImagePositionPatient`` must fall on a frame of the SEG's volume, in the same frame
  of reference and with the same in-plane axes.

Slices the SEG has no frame for are background (SEGs omit empty frames). Segment
numbers become label values (``1, 2, ...``) and segment labels their names, so a SEG
written by ``medssl predict`` reads back with the run's label set. BINARY and LABELMAP
segmentations are read; FRACTIONAL ones are refused (``seg-type``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np

from medssl.data.dicom import DicomImage
from medssl.errors import DataError

#: Largest deviation, in voxels, of a slice position from the SEG's grid.
GRID_TOL = 1e-2
_HD_ERRORS = (ValueError, KeyError, AttributeError, TypeError, IndexError, OSError, EOFError)


@dataclass(frozen=True)
class SegInfo:
    """What listing needs of one SEG (its frames stay unread).

    Attributes:
        path: the SEG file.
        patient_id: ``PatientID``.
        frame_of_reference: ``FrameOfReferenceUID``.
        referenced: SOP instance UIDs of the source images it references.
        segments: ``{segment number: segment label}``.
    """

    path: Path
    patient_id: str
    frame_of_reference: str
    referenced: frozenset[str]
    segments: dict[int, str]


def _segread(path: Path) -> hd.seg.Segmentation:
    try:
        seg = hd.seg.segread(path)
    except _HD_ERRORS as exc:
        raise DataError(path, "unreadable", f"not a readable DICOM-SEG ({exc})") from exc
    kind = str(seg.SegmentationType)
    if kind not in ("BINARY", "LABELMAP"):
        raise DataError(path, "seg-type", f"{kind} segmentation; medssl reads BINARY or LABELMAP")
    return seg


def read_seg_info(path: Path) -> SegInfo:
    """The patient, frame of reference, referenced images and segments of a SEG.

    Raises:
        DataError: unreadable SEG, fractional type, or a segment number above 255.
    """
    seg = _segread(path)
    numbers = [int(n) for n in seg.segment_numbers]
    if any(not 0 < n <= 255 for n in numbers):
        raise DataError(path, "seg-segments", f"segment numbers {numbers} outside 1..255")
    return SegInfo(
        path,
        str(seg.get("PatientID", "")),
        str(seg.get("FrameOfReferenceUID", "")),
        frozenset(str(uid) for _study, _series, uid in seg.get_source_image_uids()),
        {n: str(seg.get_segment_description(n).segment_label) for n in numbers},
    )


def _by_position(path: Path, seg: hd.seg.Segmentation, images: Sequence[DicomImage]) -> np.ndarray:
    """Slices of the SEG's volume at the images' positions (see the module docstring)."""
    first = images[0]
    if str(seg.get("FrameOfReferenceUID", "")) != first.frame_of_reference:
        raise DataError(path, "frame-of-reference", "FrameOfReferenceUID differs from the images'")
    try:
        volume = seg.get_volume(combine_segments=True, dtype=np.uint8)
    except (RuntimeError, *_HD_ERRORS) as exc:
        raise DataError(path, "seg-geometry", f"frames form no volume ({exc})") from exc
    affine = np.asarray(volume.affine, float)  # voxel (slice, row, column) -> LPS mm
    row_dir, col_dir = np.asarray(first.orientation[:3]), np.asarray(first.orientation[3:])
    in_plane = np.allclose(affine[:3, 2], row_dir * first.pixel_spacing[1], atol=1e-3)
    in_plane &= np.allclose(affine[:3, 1], col_dir * first.pixel_spacing[0], atol=1e-3)
    array = np.asarray(volume.array)
    if not in_plane or array.shape[1:] != (first.rows, first.columns):
        raise DataError(path, "seg-geometry", "its pixel grid is not the images' grid")
    inverse = np.linalg.inv(affine)
    out = np.zeros((len(images), first.rows, first.columns), np.uint8)
    for k, image in enumerate(images):
        s, r, c = (inverse @ np.array([*image.position, 1.0]))[:3]
        if max(abs(r), abs(c), abs(s - round(s))) > GRID_TOL:
            raise DataError(path, "seg-geometry", f"no frame plane through {image.path.name}")
        if 0 <= round(s) < array.shape[0]:
            out[k] = array[round(s)]
    return out


def seg_label_map(path: Path, images: Sequence[DicomImage]) -> np.ndarray:
    """``(S, rows, columns)`` uint8 label map (segment numbers) on the slices ``images``.

    Raises:
        DataError: unreadable SEG, or frames that cannot be placed on these slices.
    """
    seg = _segread(path)
    uids = [im.sop_uid for im in images]
    try:
        return seg.get_pixels_by_source_instance(
            uids, combine_segments=True, assert_missing_frames_are_empty=True, dtype=np.uint8
        )
    except RuntimeError:  # no per-frame source references: place frames by position
        return _by_position(path, seg, images)
    except _HD_ERRORS as exc:
        raise DataError(path, "seg-labels", f"cannot map onto the stack ({exc})") from exc
