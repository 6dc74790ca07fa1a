"""Labelled phases of DICOM stacks: from a DICOM-SEG, or a NIfTI label volume beside them.

Every frame of a cine stack stays in the unlabelled pool (its ``series`` record); a
phase that is labelled is listed once more as a ``labelled`` record (image + label),
as the ACDC reader lists its ED/ES frames beside the 4D cine:

* a **DICOM-SEG** anywhere below the root labels the phase whose images it references
  (by SOP instance UID; see :mod:`medssl.data.dicom_seg_labels`); segment numbers are
  the label values, segment labels their names;
* a **NIfTI label volume** ``PATIENT_frameYY_gt.nii.gz`` (``PATIENT_gt.nii.gz`` for a
  single-phase stack) labels phase ``YY`` of a stack of ``PATIENT`` (the ``PatientID``
  made file-safe, as ``medssl data convert`` names it) whose shape and affine it shares;
  its label names come from ``labels.json`` at the root (``{"background": 0, ...}``),
  which is then required.

``labels.json``, when present, is the source's label set (SEG segments must be declared
values); otherwise the SEGs' segments are. Of a patient's two labelled phases the
earlier is ED and the later ES (the convention of the other readers without
``Info.cfg``).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np

from medssl.artifacts.labels import UNLABELLED, LabelSet
from medssl.data.case import Case, VolumeRef
from medssl.data.checks import check_label_values, check_same_geometry, check_same_shape
from medssl.data.dicom_pixels import read_images
from medssl.data.dicom_seg_labels import SegInfo, read_seg_info, seg_label_map
from medssl.data.dicom_stack import StackPlan, unique_paths
from medssl.data.nifti import (
    is_nifti,
    read_header,
    read_nifti,
    strip_nifti_suffix,
    to_slices,
)
from medssl.data.readers.base import phases_by_frame_order, safe_stem, split_frame_name
from medssl.data.readers.image2d import LABELS_FILE, read_labels_json
from medssl.errors import DataError

LABEL_SUFFIX = "_gt"

#: Where a label lies: (stack index, phase index).
Slot = tuple[int, int]


def is_label_volume(path: Path) -> bool:
    """True for a NIfTI file named ``..._gt`` (a label map, not an image)."""
    return is_nifti(path) and strip_nifti_suffix(path.name).endswith(LABEL_SUFFIX)


def label_files(root: Path) -> list[Path]:
    """NIfTI label volumes (``*_gt.nii(.gz)``) below ``root``, in path order."""
    return sorted(p for p in root.rglob("*") if p.is_file() and is_label_volume(p))


def _load_labelled(
    plan: StackPlan, t: int, values: tuple[int, ...], ref: VolumeRef
) -> Iterator[Case]:
    label_path = ref.files[-1]
    image = read_images(plan.grid[t])
    if is_label_volume(label_path):
        gt = read_nifti(label_path, 3, as_label=True)
        label = to_slices(gt.data)
        check_same_shape(label_path, image.shape, label.shape)
        zooms = tuple(reversed(plan.spacing))
        check_same_geometry(label_path, zooms, gt.zooms, plan.affine, gt.affine)
    else:
        label = seg_label_map(label_path, plan.grid[t])
    label = check_label_values(label_path, label, values)
    yield Case(
        ref.patient_id,
        image,
        label,
        plan.spacing,
        ref.phase,
        ref.frame,
        ref.meta,
        ref.files,
        plan.affine,
    )


def _seg_slot(info: SegInfo, index: dict[str, Slot]) -> Slot:
    slots = {index[uid] for uid in info.referenced if uid in index}
    if not slots:
        raise DataError(info.path, "seg-unmatched", "references no image of this folder")
    if len(slots) > 1:
        raise DataError(
            info.path, "seg-phases", f"references images of {len(slots)} phases; a SEG labels one"
        )
    return next(iter(slots))


def _nifti_slot(path: Path, plans: list[StackPlan]) -> Slot:
    pid, frame = split_frame_name(strip_nifti_suffix(path.name)[: -len(LABEL_SUFFIX)])
    header = read_header(path, 3)
    shape = tuple(int(s) for s in header.header.get_data_shape()[:3])
    t = (frame or 1) - 1
    for i, plan in enumerate(plans):
        first = plan.grid[0][0]
        if (
            safe_stem(first.patient_id) == pid
            and t < plan.n_phases
            and shape == (first.columns, first.rows, plan.n_slices)
            and np.allclose(header.affine, plan.affine, atol=1e-3)
        ):
            return i, t
    raise DataError(
        path,
        "no-matching-stack",
        f"no DICOM stack of {pid} with phase {t + 1} and this label's shape and affine",
    )


def _check_segments(info: SegInfo, names: dict[int, str], declared: bool) -> None:
    """A SEG's segments must be values of ``labels.json`` (``declared``) or, without it,
    name each number as the SEGs before did; ``names`` gathers them."""
    if declared:
        undeclared = sorted(set(info.segments) - set(names))
        if undeclared:
            raise DataError(info.path, "label-values", f"segments {undeclared} not in labels.json")
        return
    clash = {
        n: (label, names[n]) for n, label in info.segments.items() if names.get(n, label) != label
    }
    if clash:
        n, (label, known) = next(iter(clash.items()))
        raise DataError(info.path, "seg-segments", f"segment {n} is {label!r}, elsewhere {known!r}")
    names.update(info.segments)


def labelled_refs(
    plans: list[StackPlan], segs: list[Path], niftis: list[Path], root: Path
) -> tuple[list[VolumeRef], LabelSet, list[DataError]]:
    """The ``labelled`` records of the phases that a SEG or NIfTI label volume labels,
    the source's label set, and the problems of labels that match no phase."""
    problems: list[DataError] = []
    index = {
        im.sop_uid: (i, t) for i, p in enumerate(plans) for t, ph in enumerate(p.grid) for im in ph
    }
    declared = bool(niftis) or (root / LABELS_FILE).exists()
    names = dict(read_labels_json(root / LABELS_FILE).names) if declared else {0: "background"}
    slots: dict[Slot, Path] = {}
    for path in [*segs, *niftis]:
        try:
            if path in niftis:
                slot = _nifti_slot(path, plans)
            else:
                info = read_seg_info(path)
                slot = _seg_slot(info, index)
                _check_segments(info, names, declared)
        except DataError as err:
            problems.append(err)
            continue
        if slot in slots:
            problems.append(
                DataError(path, "duplicate-labels", f"labels the phase {slots[slot].name} labels")
            )
            continue
        slots[slot] = path
    label_set = LabelSet.from_names(names) if len(names) > 1 else UNLABELLED
    keys = {
        (i, t): (plans[i].grid[0][0].patient_id, t + 1 if plans[i].n_phases > 1 else None)
        for i, t in slots
    }
    phases = phases_by_frame_order(list(keys.values()))
    refs = [
        VolumeRef(
            pid,
            "labelled",
            (*unique_paths(plans[i].grid[t]), slots[(i, t)]),
            partial(_load_labelled, plans[i], t, label_set.values),
            phases[(pid, frame)],
            frame,
            plans[i].patient,
        )
        for (i, t), (pid, frame) in sorted(keys.items())
    ]
    return refs, label_set, problems
