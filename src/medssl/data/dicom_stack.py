"""The geometry of a stack of single-frame DICOM images, as pure functions.

pydicom parses the files (:mod:`medssl.data.dicom`); what no library gives is the stack:

* slices are ordered by their position along the plane normal
  ``n = row direction x column direction`` (both from ``ImageOrientationPatient``),
  never by file name, ``InstanceNumber`` or ``SliceLocation``;
* images at one position are the phases of a cine, ordered by ``TriggerTime``;
* the voxel-to-world affine is built in DICOM's LPS patient space and flipped to the
  RAS convention of NIfTI/nibabel, so that a DICOM stack and a NIfTI conversion of it
  carry the same affine.

Axis convention (as for NIfTI, see :mod:`medssl.data.nifti`): a case is
``(slices, rows, columns)``; the affine maps voxel ``(column, row, slice)``, i.e. NIfTI's
``(X, Y, Z)``, to RAS millimetres. Spacing is ``(slice, row, column)``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from medssl.data.case import PatientMeta
from medssl.data.dicom import DicomImage
from medssl.data.dicom_patient import merge_meta
from medssl.errors import DataError

#: DICOM patient space (LPS) to NIfTI/nibabel world space (RAS).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: Positions closer than this along the normal (mm) are one slice.
POSITION_TOL_MM = 0.01
#: Largest relative deviation of a slice gap from the median gap.
GAP_TOL = 0.05
#: Largest deviation of orientation cosines (and relative pixel spacing) within a stack.
ORIENTATION_TOL = 1e-4


def slice_normal(path: Path, orientation: Sequence[float]) -> np.ndarray:
    """Unit normal ``row direction x column direction`` of an image plane (LPS).

    Raises:
        DataError: when the two direction cosines are not unit length and orthogonal.
    """
    row, col = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    if (
        abs(np.linalg.norm(row) - 1) > 1e-3
        or abs(np.linalg.norm(col) - 1) > 1e-3
        or abs(float(row @ col)) > 1e-3
    ):
        raise DataError(
            path, "bad-geometry", "ImageOrientationPatient is not two orthogonal unit vectors"
        )
    normal = np.cross(row, col)
    return normal / np.linalg.norm(normal)


def stack_affine(
    orientation: Sequence[float],
    pixel_spacing: tuple[float, float],
    origin: Sequence[float],
    step: Sequence[float],
) -> np.ndarray:
    """RAS affine of voxel ``(column, row, slice)`` for a stack of DICOM images.

    Args:
        orientation: ``ImageOrientationPatient`` (row direction, column direction; LPS).
        pixel_spacing: DICOM ``PixelSpacing``: ``(row spacing, column spacing)`` mm.
        origin: ``ImagePositionPatient`` of the first slice (LPS mm).
        step: LPS vector from one slice's position to the next.

    Returns:
        4x4 matrix; moving one column moves ``column spacing`` along the row direction.
    """
    lps = np.eye(4)
    lps[:3, 0] = np.asarray(orientation[:3], float) * pixel_spacing[1]
    lps[:3, 1] = np.asarray(orientation[3:], float) * pixel_spacing[0]
    lps[:3, 2] = np.asarray(step, float)
    lps[:3, 3] = np.asarray(origin, float)
    return LPS_TO_RAS @ lps


def group_positions(images: Sequence[DicomImage], normal: np.ndarray) -> list[list[DicomImage]]:
    """Images grouped by slice position, ordered along ``normal`` (ascending)."""
    keyed = sorted(images, key=lambda im: float(np.dot(im.position, normal)))
    groups: list[list[DicomImage]] = []
    last = -math.inf
    for im in keyed:
        d = float(np.dot(im.position, normal))
        if groups and d - last <= POSITION_TOL_MM:
            groups[-1].append(im)
        else:
            groups.append([im])
        last = d
    return groups


def order_phases(group: list[DicomImage]) -> list[DicomImage]:
    """The images of one slice position ordered by ``TriggerTime``.

    Raises:
        DataError: a cine image without ``TriggerTime``, or two images at one time.
    """
    if len(group) == 1:
        return group
    untimed = [im for im in group if im.trigger_time is None]
    if untimed:
        raise DataError(
            untimed[0].path,
            "missing-tag",
            f"no TriggerTime, but {len(group)} images share its slice position",
        )
    ordered = sorted(group, key=lambda im: (im.trigger_time, str(im.path)))
    for a, b in itertools.pairwise(ordered):
        if a.trigger_time == b.trigger_time:
            same = "same SOPInstanceUID" if a.sop_uid == b.sop_uid else "different images"
            raise DataError(
                b.path,
                "duplicate-image",
                f"same slice position and TriggerTime as {a.path.name} ({same})",
            )
    return ordered


@dataclass(frozen=True)
class StackPlan:
    """A checked stack: which image is each slice of each phase, and its geometry.

    Attributes:
        grid: ``grid[t][k]``: the image of phase ``t`` (by ``TriggerTime``) and slice
            ``k`` (along the normal).
        affine: RAS affine of voxel ``(column, row, slice)``.
        spacing: ``(slice, row, column)`` mm.
    """

    grid: tuple[tuple[DicomImage, ...], ...]
    affine: np.ndarray
    spacing: tuple[float, float, float]

    @property
    def n_phases(self) -> int:
        return len(self.grid)

    @property
    def n_slices(self) -> int:
        return len(self.grid[0])

    @property
    def files(self) -> tuple[Path, ...]:
        return unique_paths(im for phase in self.grid for im in phase)

    @property
    def patient(self) -> PatientMeta:
        """Age, sex, height and weight from the headers of the stack's images; with
        ``n_frames`` for a cine stack."""
        meta = merge_meta(im.patient for phase in self.grid for im in phase)
        return replace(meta, n_frames=self.n_phases if self.n_phases > 1 else None)


def unique_paths(images: Iterable[DicomImage]) -> tuple[Path, ...]:
    """The files of ``images`` in order, each once (an enhanced file holds many)."""
    return tuple(dict.fromkeys(im.path for im in images))


def check_consistent(images: Sequence[DicomImage]) -> None:
    """Every image of a stack must share patient, frame of reference, matrix, pixel
    spacing and orientation with the first one; the first that does not is named."""
    ref = images[0]
    for im in images[1:]:
        if im.patient_id != ref.patient_id:
            raise DataError(im.path, "patient-mismatch", f"PatientID differs from {ref.path.name}")
        if im.frame_of_reference != ref.frame_of_reference:
            raise DataError(
                im.path, "frame-of-reference", f"FrameOfReferenceUID differs from {ref.path.name}"
            )
        if (im.rows, im.columns) != (ref.rows, ref.columns):
            raise DataError(
                im.path,
                "shape-mismatch",
                f"{im.rows} x {im.columns} pixels != {ref.rows} x {ref.columns} of {ref.path.name}",
            )
        if not np.allclose(im.pixel_spacing, ref.pixel_spacing, rtol=ORIENTATION_TOL, atol=0):
            raise DataError(
                im.path,
                "spacing-mismatch",
                f"PixelSpacing {im.pixel_spacing} != {ref.pixel_spacing} of {ref.path.name}",
            )
        if not np.allclose(im.orientation, ref.orientation, atol=ORIENTATION_TOL, rtol=0):
            raise DataError(
                im.path,
                "orientation-mismatch",
                f"ImageOrientationPatient differs from {ref.path.name}",
            )


def _check_gaps(groups: list[list[DicomImage]], normal: np.ndarray) -> None:
    depth = np.array([float(np.dot(g[0].position, normal)) for g in groups])
    gaps = np.diff(depth)
    median = float(np.median(gaps))
    for i, gap in enumerate(gaps):
        if abs(gap - median) > GAP_TOL * median:
            raise DataError(
                groups[i + 1][0].path,
                "slice-gap",
                f"{gap:.3g} mm from the previous slice where the stack's step is {median:.3g} mm"
                " (a slice missing, or two stacks mixed)",
            )


def _check_in_line(groups: list[list[DicomImage]], step: np.ndarray, spacing: float) -> None:
    origin = np.asarray(groups[0][0].position)
    for k, group in enumerate(groups):
        off = float(np.linalg.norm(np.asarray(group[0].position) - origin - k * step))
        if off > 0.5 * spacing:
            raise DataError(
                group[0].path, "slice-shift", f"lies {off:.3g} mm off the line of the stack"
            )


def plan_stack(images: Sequence[DicomImage]) -> StackPlan:
    """Order a stack of images into phases x slices and compute its geometry.

    Raises:
        DataError: inconsistent images (:func:`check_consistent`), a bad orientation,
            uneven or shifted slices, a missing ``TriggerTime``, duplicate images, or
            slice positions with different numbers of phases.
    """
    check_consistent(images)
    first = images[0]
    normal = slice_normal(first.path, first.orientation)
    groups = [order_phases(g) for g in group_positions(images, normal)]
    counts = [len(g) for g in groups]
    n_t = max(set(counts), key=counts.count)
    odd = next((g for g in groups if len(g) != n_t), None)
    if odd is not None:
        raise DataError(
            odd[0].path,
            "phase-count",
            f"{len(odd)} images at this slice position where the stack has {n_t} phases",
        )
    if len(groups) > 1:
        _check_gaps(groups, normal)
        step = (np.asarray(groups[-1][0].position) - np.asarray(groups[0][0].position)) / (
            len(groups) - 1
        )
        _check_in_line(groups, step, min(first.pixel_spacing))
    else:
        step = normal * (first.thickness or 1.0)
    affine = stack_affine(first.orientation, first.pixel_spacing, groups[0][0].position, step)
    spacing = (float(np.linalg.norm(step)), *first.pixel_spacing)
    grid = tuple(tuple(g[t] for g in groups) for t in range(n_t))
    return StackPlan(grid, affine, spacing)  # type: ignore[arg-type]
