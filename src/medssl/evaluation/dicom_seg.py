"""DICOM-SEG output (highdicom): a predicted label map stored against its source images.

One Segmentation instance is written per predicted 3D volume (one cine phase): a SEG
cannot hold two frames at one plane position, so the phases of a cine stack become the
instances of one SEG series. Each foreground label of the run's label set is a segment
(BINARY, algorithm type AUTOMATIC) named by the label set; labels with a cardiac role
are coded with their SNOMED-CT structure. When a stack's slices come from one series
(one series per slice position) the SEG references them per frame; otherwise it
records the plane positions itself and lists the other series' images as further
sources.
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


def _read_sources(paths: Sequence[Path]) -> list[pydicom.Dataset]:
    try:
        return [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    except (OSError, EOFError, ValueError) as exc:
        raise DataError(paths[0], "unreadable", f"source image header unreadable ({exc})") from exc


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


def write_dicom_seg(
    path: Path,
    sources: Sequence[Path],
    label: np.ndarray,
    labels: LabelSet,
    series_uid: str,
    instance_number: int,
    series_number: int = 9000,
) -> Path:
    """Write ``label`` as a DICOM-SEG instance derived from ``sources``.

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
    seg = hd.seg.Segmentation(
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
    seg.save_as(path)
    return path
