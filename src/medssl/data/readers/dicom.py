"""Reader for folders of DICOM images (cine MR as scanners export it).

Every file below the root that is named ``*.dcm``/``*.dicom``/``*.ima`` or starts with
the ``DICM`` preamble is parsed (headers only while listing); non-image objects
(DICOMDIR, reports, presentation states) are skipped and other files
ignored. Images are grouped into *stacks*:

* one stack per ``SeriesInstanceUID`` (its images must share one ``PatientID``);
* series whose images all lie at one slice position (many scanners export a short-axis
  cine as one series per slice) are merged with the other such series of the same
  study and frame of reference that share orientation, matrix and pixel spacing.

Each stack is ordered and checked by :func:`medssl.data.dicom_stack.plan_stack` (slices along
the plane normal, phases by ``TriggerTime``, LPS→RAS affine). A cine stack is a
``series`` record (one unlabelled case per phase, ``frame`` = 1-based phase), a stack
with one phase an ``unlabelled`` volume. A phase that a DICOM-SEG (collected while
scanning) or a NIfTI ``*_gt`` volume labels is listed once more as a ``labelled`` record
(:mod:`medssl.data.readers.dicom_labels`). The patient id is ``PatientID``; nothing
else that identifies the patient is kept or logged.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np

from medssl.data.case import Case, Phase, VolumeRef
from medssl.data.dicom import (
    DicomImage,
    images_from_header,
    is_dicom_file,
    is_segmentation,
    read_header,
)
from medssl.data.dicom_pixels import read_images
from medssl.data.dicom_stack import (
    ORIENTATION_TOL,
    POSITION_TOL_MM,
    StackPlan,
    plan_stack,
    slice_normal,
    unique_paths,
)
from medssl.data.readers.base import Source
from medssl.data.readers.dicom_labels import label_files, labelled_refs
from medssl.errors import DataError

log = logging.getLogger(__name__)


def find_dicom_files(root: Path) -> list[Path]:
    """Files below ``root`` that are meant to be DICOM, in path order."""
    return sorted(p for p in root.rglob("*") if p.is_file() and is_dicom_file(p))


def scan_headers(root: Path) -> tuple[list[DicomImage], list[Path], list[DataError]]:
    """Parse every DICOM file's header: the images, the SEG files, and a problem for
    each file that cannot be read."""
    images: list[DicomImage] = []
    segs: list[Path] = []
    problems: list[DataError] = []
    for path in find_dicom_files(root):
        try:
            ds = read_header(path)
            if is_segmentation(ds):
                segs.append(path)
                continue
            images.extend(images_from_header(path, ds))
        except DataError as err:
            problems.append(err)
    return images, segs, problems


def _single_position(images: list[DicomImage]) -> bool:
    try:
        normal = slice_normal(images[0].path, images[0].orientation)
    except DataError:
        return False
    depth = [float(np.dot(im.position, normal)) for im in images]
    return max(depth) - min(depth) <= POSITION_TOL_MM


def _mergeable(a: DicomImage, b: DicomImage) -> bool:
    return (
        (a.patient_id, a.study_uid, a.frame_of_reference, a.rows, a.columns)
        == (b.patient_id, b.study_uid, b.frame_of_reference, b.rows, b.columns)
        and np.allclose(a.pixel_spacing, b.pixel_spacing, rtol=ORIENTATION_TOL, atol=0)
        and np.allclose(a.orientation, b.orientation, atol=ORIENTATION_TOL, rtol=0)
    )


def group_stacks(images: list[DicomImage]) -> list[list[DicomImage]]:
    """Images grouped into stacks (see the module docstring), in a stable order."""
    by_series: dict[str, list[DicomImage]] = defaultdict(list)
    for im in images:
        by_series[im.series_uid].append(im)
    stacks: list[list[DicomImage]] = []
    merged: list[list[DicomImage]] = []
    for series in by_series.values():
        if not _single_position(series):
            stacks.append(series)
            continue
        target = next((m for m in merged if _mergeable(m[0], series[0])), None)
        if target is None:
            merged.append(list(series))
        else:
            target.extend(series)
    return sorted(stacks + merged, key=lambda s: (s[0].patient_id, min(str(im.path) for im in s)))


def _load_stack(plan: StackPlan, ref: VolumeRef) -> Iterator[Case]:
    slices = [im for phase in plan.grid for im in phase]
    first = slices[0]
    volume = read_images(slices).reshape(plan.n_phases, plan.n_slices, first.rows, first.columns)
    for t, phase in enumerate(plan.grid):
        yield Case(
            ref.patient_id,
            volume[t],
            None,
            plan.spacing,
            Phase.NONE,
            t + 1 if plan.n_phases > 1 else None,
            ref.meta,
            unique_paths(phase),
            plan.affine,
        )


def plan_stacks(
    images: list[DicomImage], unreadable: frozenset[Path] = frozenset()
) -> tuple[list[StackPlan], list[DataError]]:
    """Every checked stack, and the problems of the stacks that failed.

    A failed stack that shares a folder with an ``unreadable`` file is left out without
    a problem of its own: the missing image explains it, and that file is reported.
    """
    plans: list[StackPlan] = []
    problems: list[DataError] = []
    bad_dirs = {p.parent for p in unreadable}
    for stack in group_stacks(images):
        try:
            plans.append(plan_stack(stack))
        except DataError as err:
            if bad_dirs & {im.path.parent for im in stack}:
                log.debug("%s: left out beside an unreadable file (%s)", err.path, err.check)
            else:
                problems.append(err)
    return plans, problems


def stack_ref(plan: StackPlan) -> VolumeRef:
    """The record of a stack: a ``series`` (one unlabelled case per phase) or, for one
    phase, an ``unlabelled`` volume."""
    kind = "series" if plan.n_phases > 1 else "unlabelled"
    pid = plan.grid[0][0].patient_id
    return VolumeRef(pid, kind, plan.files, partial(_load_stack, plan), meta=plan.patient)


def list_stacks(root: Path) -> tuple[list[StackPlan], list[DataError]]:
    """The checked stacks of the images below ``root`` (SEGs and label volumes left
    aside), and the problems of the files and stacks that failed."""
    images, _segs, problems = scan_headers(root)
    plans, stack_problems = plan_stacks(images, frozenset(e.path for e in problems))
    return plans, problems + stack_problems


def read_dicom(root: Path) -> Source:
    """List a folder of DICOM images as unlabelled volumes and cine series, and the
    phases that a SEG or a NIfTI label volume beside them labels."""
    images, segs, problems = scan_headers(root)
    plans, stack_problems = plan_stacks(images, frozenset(e.path for e in problems))
    problems.extend(stack_problems)
    refs = [stack_ref(plan) for plan in plans]
    labelled, label_set, label_problems = labelled_refs(plans, segs, label_files(root), root)
    refs.extend(labelled)
    problems.extend(label_problems)
    if not images and not problems:
        problems.append(DataError(root, "empty-source", "no DICOM image found"))
    log.debug(
        "%s: %d DICOM images in %d stacks of %d patients, %d labelled phases",
        root,
        len(images),
        len(plans),
        len({r.patient_id for r in refs}),
        len(labelled),
    )
    return Source(root, "dicom", refs, label_set, problems)


def holds_dicom(root: Path) -> bool:
    """True when any file below ``root`` is meant to be DICOM (stops at the first)."""
    return any(p.is_file() and is_dicom_file(p) for p in root.rglob("*"))
