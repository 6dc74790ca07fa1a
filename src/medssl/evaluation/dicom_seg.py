"""DICOM-SEG output (highdicom): a predicted label map stored against its source images.

One Segmentation instance is written per predicted 3D volume (one cine phase): a SEG
cannot hold two frames at one plane position, so the phases of a cine stack become the
instances of one SEG series. Each foreground label of the run's label set is a segment
(BINARY, algorithm type AUTOMATIC) named by the label set; labels with a cardiac role
are coded with their SNOMED-CT structure. When a stack's slices come from one series
(one series per slice position) the SEG references them per frame; otherwise it
records the plane positions itself and lists the other series' images as further
sources. Over enhanced multi-frame sources (:func:`write_dicom_seg_frames`) every SEG
frame references its one source frame (``ReferencedFrameNumber``) of the phase it
segments.

The SEG carries the source's patient and study module, as DICOM requires for it to be
filed beside the source in a viewer or PACS: it is meant for the clinician, not for a
run directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.sr.codedict import codes

from medssl import __version__
from medssl.artifacts.labels import LabelSet
from medssl.data.dicom import DicomImage
from medssl.errors import DataError

_ROLE_CODES = {
    "lv_cavity": codes.SCT.LeftVentricle,
    "lv_myocardium": codes.SCT.LeftVentricleMyocardium,
    "rv_cavity": codes.SCT.RightVentricle,
}


def segment_numbers(labels: LabelSet) -> np.ndarray:
    """Look-up table label value → segment number (1, 2, ... in value order; 0 for
    background and undeclared values): DICOM numbers segments from 1 without gaps."""
    lut = np.zeros(256, dtype=np.uint8)
    for number, value in enumerate(labels.foreground, start=1):
        lut[value] = number
    return lut


def segment_descriptions(labels: LabelSet) -> list[hd.seg.SegmentDescription]:
    """One description per foreground label, numbered as :func:`segment_numbers`."""
    algorithm = hd.AlgorithmIdentificationSequence(
        name="medssl", version=__version__, family=codes.DCM.ArtificialIntelligence
    )
    role_of = {value: role for role, value in labels.roles.items()}
    return [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=labels.name(value),
            segmented_property_category=codes.SCT.AnatomicalStructure,
            segmented_property_type=_ROLE_CODES.get(
                role_of.get(value, ""), codes.SCT.AnatomicalStructure
            ),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        )
        for number, value in enumerate(labels.foreground, start=1)
    ]


#: Type 2 patient and study attributes that highdicom copies from the source: an
#: anonymised export may leave them out, and the SEG then carries them empty.
_TYPE2 = (
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
)
#: Largest distance (mm) between a SEG frame's position and its source frame's.
_POSITION_TOL_MM = 1e-3


def _read_sources(paths: Sequence[Path]) -> list[pydicom.Dataset]:
    try:
        datasets = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    except (OSError, EOFError, ValueError) as exc:
        raise DataError(paths[0], "unreadable", f"source image header unreadable ({exc})") from exc
    for ds in datasets:
        for key in _TYPE2:
            if key not in ds:
                setattr(ds, key, "")
    return datasets


def _geometry_kwargs(sources: list[pydicom.Dataset]) -> dict:
    """Explicit plane geometry for sources of several series (highdicom then takes only
    the first as the source image and the others as further sources)."""
    first = sources[0]
    return {
        "source_images": sources[:1],
        "further_source_images": sources[1:],
        "plane_positions": [
            hd.PlanePositionSequence(
                hd.CoordinateSystemNames.PATIENT, image_position=ds.ImagePositionPatient
            )
            for ds in sources
        ],
        "plane_orientation": hd.PlaneOrientationSequence(
            hd.CoordinateSystemNames.PATIENT, image_orientation=first.ImageOrientationPatient
        ),
        "pixel_measures": hd.PixelMeasuresSequence(
            pixel_spacing=first.PixelSpacing,
            slice_thickness=first.get("SliceThickness") or None,
        ),
    }


def _segmentation(
    label: np.ndarray,
    labels: LabelSet,
    series_uid: str,
    instance_number: int,
    series_number: int,
    geometry: dict,
) -> hd.seg.Segmentation:
    """The SEG instance of ``label`` with the sources and geometry in ``geometry``."""
    return hd.seg.Segmentation(
        pixel_array=segment_numbers(labels)[label],
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segment_descriptions(labels),
        series_instance_uid=series_uid,
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=instance_number,
        manufacturer="medssl",
        manufacturer_model_name="medssl U-Net",
        software_versions=__version__,
        device_serial_number="0",
        series_description="medssl segmentation",
        omit_empty_frames=bool(label.any()),
        **geometry,
    )


def write_dicom_seg(
    path: Path,
    sources: Sequence[Path],
    label: np.ndarray,
    labels: LabelSet,
    series_uid: str,
    instance_number: int,
    series_number: int = 9000,
) -> Path:
    """Write ``label`` as a DICOM-SEG instance derived from single-frame ``sources``.

    Args:
        path: output file.
        sources: the source image of each slice, in the order of ``label``'s first axis.
        label: ``(S, rows, columns)`` uint8 label map on the sources' pixel grid.
        labels: the run's label set (segments: its foreground values).
        series_uid: the SEG series (shared by the phases of one stack).
        instance_number: this instance's number in the SEG series (1-based).
        series_number: ``SeriesNumber`` of the SEG series.

    Returns:
        ``path``.
    """
    datasets = _read_sources(sources)
    if label.shape[0] != len(datasets):
        raise ValueError(f"{label.shape[0]} label slices for {len(datasets)} source images")
    one_series = len({str(ds.SeriesInstanceUID) for ds in datasets}) == 1
    geometry = {"source_images": datasets} if one_series else _geometry_kwargs(datasets)
    seg = _segmentation(label, labels, series_uid, instance_number, series_number, geometry)
    seg.save_as(path)
    return path


def write_dicom_seg_frames(
    path: Path,
    frames: Sequence[DicomImage],
    label: np.ndarray,
    labels: LabelSet,
    series_uid: str,
    instance_number: int,
    series_number: int = 9000,
) -> Path:
    """Write ``label`` as a DICOM-SEG instance derived from frames of enhanced
    multi-frame images (one file, or one file per slice position).

    Args:
        path: output file.
        frames: the source image of each slice (``frame``: 0-based index in its
            multi-frame file; ``None`` for a single-frame image), in the order of
            ``label``'s first axis, one per plane position.
        label, labels, series_uid, instance_number, series_number: as
            :func:`write_dicom_seg`.

    Returns:
        ``path``; each SEG frame references its one source frame
        (``ReferencedSOPInstanceUID`` + ``ReferencedFrameNumber``, 1-based, for a
        multi-frame source).
    """
    if label.shape[0] != len(frames):
        raise ValueError(f"{label.shape[0]} label slices for {len(frames)} source frames")
    files = list(dict.fromkeys(im.path for im in frames))
    datasets = dict(zip(files, _read_sources(files), strict=True))
    first = frames[0]
    geometry = {
        "source_images": [datasets[files[0]]],
        "further_source_images": [datasets[f] for f in files[1:]],
        "plane_positions": [
            hd.PlanePositionSequence(hd.CoordinateSystemNames.PATIENT, image_position=im.position)
            for im in frames
        ],
        "plane_orientation": hd.PlaneOrientationSequence(
            hd.CoordinateSystemNames.PATIENT, image_orientation=first.orientation
        ),
        "pixel_measures": hd.PixelMeasuresSequence(
            pixel_spacing=first.pixel_spacing, slice_thickness=first.thickness
        ),
    }
    seg = _segmentation(label, labels, series_uid, instance_number, series_number, geometry)
    _reference_frames(seg, frames, datasets)
    seg.save_as(path)
    return path


def _frame_reference(image: DicomImage, source: pydicom.Dataset) -> pydicom.Dataset:
    """A Derivation Image Sequence item: ``image``'s frame, source of a segmentation."""
    ref = pydicom.Dataset()
    ref.ReferencedSOPClassUID = source.SOPClassUID
    ref.ReferencedSOPInstanceUID = source.SOPInstanceUID
    if image.frame is not None:
        ref.ReferencedFrameNumber = image.frame + 1
    ref.SpatialLocationsPreserved = "YES"
    ref.PurposeOfReferenceCodeSequence = [
        hd.sr.CodedConcept.from_code(codes.DCM.SourceImageForImageProcessingOperation)
    ]
    item = pydicom.Dataset()
    item.SourceImageSequence = [ref]
    item.DerivationCodeSequence = [
        hd.sr.CodedConcept.from_code(codes.cid7203.SegmentationImageDerivation)
    ]
    return item


def _reference_frames(
    seg: hd.seg.Segmentation, frames: Sequence[DicomImage], datasets: dict[Path, pydicom.Dataset]
) -> None:
    """Point each SEG frame at the one source frame at its plane position.

    highdicom matches SEG frames to source frames by position, so over a cine file it
    would reference the frames of every phase there; the phase is known here.
    """
    positions = np.array([im.position for im in frames], dtype=float)
    for item in seg.PerFrameFunctionalGroupsSequence:
        where = np.array(item.PlanePositionSequence[0].ImagePositionPatient, dtype=float)
        distance = np.linalg.norm(positions - where, axis=1)
        k = int(np.argmin(distance))
        if distance[k] > _POSITION_TOL_MM:
            raise ValueError(f"SEG frame at {where.tolist()} has no source frame")
        item.DerivationImageSequence = [_frame_reference(frames[k], datasets[frames[k].path])]
