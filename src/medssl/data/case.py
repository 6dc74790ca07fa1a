"""The one case interface shared by every reader.

A *case* is one 3D volume of one patient at one time point: an image of shape
``(slices, H, W)`` (float32), an optional label volume of the same shape (uint8),
the voxel spacing in millimetres in the same axis order (or ``None`` when unknown),
and where it came from. NIfTI volumes stored as ``(X, Y, Z)`` are presented as
``(Z, Y, X)`` so that a slice is ``image[k]`` with rows along Y, the orientation used
by the preprocessed ACDC h5 copies of the semi-supervised literature.

Readers do not load voxels when they list a source: they return :class:`VolumeRef`
records, and :meth:`VolumeRef.load` decodes them (a 4D cine file yields one case per
frame).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np


class Phase(StrEnum):
    """Cardiac phase of a volume; ``NONE`` for unlabelled or non-cardiac frames."""

    ED = "ED"
    ES = "ES"
    NONE = "none"


@dataclass(frozen=True)
class PatientMeta:
    """Per-patient metadata, each field ``None`` when the source does not say.

    Attributes:
        group: diagnostic group (ACDC ``Info.cfg``).
        height_cm, weight_kg: height in cm and weight in kg.
        n_frames: frames of the cardiac cycle; ed_frame, es_frame: 1-based ED/ES frames.
        age_years: age in years; sex: ``"M"``, ``"F"`` or ``"O"`` (DICOM headers).
    """

    group: str | None = None
    height_cm: float | None = None
    weight_kg: float | None = None
    n_frames: int | None = None
    ed_frame: int | None = None
    es_frame: int | None = None
    age_years: float | None = None
    sex: str | None = None

    def to_dict(self) -> dict[str, str | float | int]:
        """The fields the source gave (``None`` left out), for JSON files."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Case:
    """One decoded 3D volume.

    Attributes:
        patient_id: patient identifier, e.g. ``"patient001"``.
        image: ``(S, H, W)`` float32 intensities as stored (not normalised).
        label: ``(S, H, W)`` uint8 label map, or ``None`` for unlabelled frames.
        spacing: ``(slice, row, column)`` voxel size in mm, or ``None`` when unknown.
        phase: ED, ES or NONE.
        frame: 1-based frame number in the cardiac cycle, ``None`` when unknown.
        meta: patient metadata.
        sources: files the volume was read from.
        affine: 4x4 NIfTI affine of the source file (voxel ``(X, Y, Z)`` to mm) or ``None``.
    """

    patient_id: str
    image: np.ndarray
    label: np.ndarray | None
    spacing: tuple[float, float, float] | None
    phase: Phase = Phase.NONE
    frame: int | None = None
    meta: PatientMeta = field(default_factory=PatientMeta)
    sources: tuple[Path, ...] = ()
    affine: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.image.ndim != 3:
            raise ValueError(f"{self.patient_id}: image must be (S, H, W), got {self.image.shape}")
        if self.label is not None and self.label.shape != self.image.shape:
            raise ValueError(
                f"{self.patient_id}: label {self.label.shape} != image {self.image.shape}"
            )

    @property
    def labelled(self) -> bool:
        return self.label is not None

    @property
    def n_slices(self) -> int:
        return int(self.image.shape[0])


@dataclass(frozen=True)
class VolumeRef:
    """A listed, not yet decoded, volume (or 4D series) of a source.

    Attributes:
        patient_id: patient identifier.
        kind: ``"labelled"`` (image + label of one frame), ``"unlabelled"`` (one 3D
            image) or ``"series"`` (a 4D cine file: one unlabelled case per frame).
        files: the files this record reads.
        phase, frame: for labelled volumes.
        meta: patient metadata.
        loader: function decoding the record into cases (checks included).
    """

    patient_id: str
    kind: str
    files: tuple[Path, ...]
    loader: Callable[[VolumeRef], Iterator[Case]] = field(compare=False, repr=False)
    phase: Phase = Phase.NONE
    frame: int | None = None
    meta: PatientMeta = field(default_factory=PatientMeta)

    def load(self) -> Iterator[Case]:
        """Decode the record; raises :class:`medssl.errors.DataError` on a bad file."""
        return self.loader(self)
