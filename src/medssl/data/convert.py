"""Conversion of any source medssl reads into an nnU-Net v2 raw dataset.

Every case goes through the reader and its checks (:func:`medssl.data.readers.open_source`)
and is written as NIfTI with the case's affine, so a DICOM cine becomes the NIfTI that
nnU-Net (and medssl's own nnU-Net reader) expects:

* labelled volumes → ``imagesTr/NAME_0000.nii.gz`` + ``labelsTr/NAME.nii.gz``;
* unlabelled volumes and cine frames → ``imagesTs/NAME_0000.nii.gz``;
* ``NAME`` is ``PATIENT_frameYY`` (``PATIENT`` alone for a volume without a frame
  number), with the patient id made safe for file names; when two volumes of a patient
  would share a name, the later one takes the patient's next free frame number, so
  that the patient, on which splits are drawn, is kept;
* ``dataset.json``: one channel, the source's label set as ``{name: value}``,
  ``numTraining``, ``file_ending``.

The dataset is written into a temporary folder beside ``out`` and renamed into place
only when every case has been written; on any problem nothing is left behind.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from medssl.data.case import Case
from medssl.data.nifti import from_slices, write_nifti
from medssl.data.readers import open_source
from medssl.data.readers.base import Source, safe_stem
from medssl.errors import DataError, DataErrors

log = logging.getLogger(__name__)

#: Output layouts of :func:`convert_source`.
TARGETS = ("nnunet",)
_ENDING = ".nii.gz"
_INT16 = np.iinfo(np.int16)


@dataclass(frozen=True)
class ConvertResult:
    """What :func:`convert_source` wrote: the dataset folder and its case counts."""

    path: Path
    labelled: int
    unlabelled: int
    patients: int


def case_affine(case: Case) -> np.ndarray:
    """The case's affine, or a diagonal one from its spacing (identity when unknown)."""
    if case.affine is not None:
        return np.asarray(case.affine, dtype=np.float64)
    s, r, c = case.spacing or (1.0, 1.0, 1.0)
    return np.diag([c, r, s, 1.0])


def image_dtype(image: np.ndarray) -> type:
    """int16 when every intensity is an integer within its range, else float32."""
    integral = bool(np.array_equal(image, np.round(image)))
    in_range = image.size == 0 or (image.min() >= _INT16.min and image.max() <= _INT16.max)
    return np.int16 if integral and in_range else np.float32


class _Names:
    """Unique ``PATIENT_frameYY`` names per output folder (see the module docstring)."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def take(self, case: Case) -> str:
        pid = safe_stem(case.patient_id)
        name = pid if case.frame is None else f"{pid}_frame{case.frame:02d}"
        frame = case.frame or 1
        while name in self.used:
            frame += 1
            name = f"{pid}_frame{frame:02d}"
        if case.frame is not None and frame != case.frame:
            log.info("%s frame %d written as frame %d (name taken)", pid, case.frame, frame)
        self.used.add(name)
        return name


def _write_case(tmp: Path, case: Case, names: dict[str, _Names]) -> None:
    affine = case_affine(case)
    image = from_slices(case.image)
    if case.label is None:
        name = names["imagesTs"].take(case)
        write_nifti(
            tmp / "imagesTs" / f"{name}_0000{_ENDING}", image, affine, dtype=image_dtype(image)
        )
        return
    name = names["imagesTr"].take(case)
    write_nifti(tmp / "imagesTr" / f"{name}_0000{_ENDING}", image, affine, dtype=image_dtype(image))
    write_nifti(
        tmp / "labelsTr" / f"{name}{_ENDING}", from_slices(case.label), affine, dtype=np.uint8
    )


def _dataset_json(source: Source, n_train: int, channel: str) -> dict:
    return {
        "name": source.root.name,
        "description": f"converted by medssl from a {source.format} source",
        "channel_names": {"0": channel},
        "labels": {name: value for value, name in source.labels.names.items()},
        "numTraining": n_train,
        "file_ending": _ENDING,
    }


def _prepare_out(out: Path, force: bool) -> Path:
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise DataError(out, "output-exists", "is not empty; remove it or pass --force")
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (tmp / sub).mkdir(parents=True)
    return tmp


def _swap_into_place(tmp: Path, out: Path) -> None:
    old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def convert_source(
    root: str | Path,
    out: str | Path,
    to: str = "nnunet",
    format: str | None = None,
    *,
    include_series: bool = True,
    channel: str = "MRI",
    force: bool = False,
    progress: bool = False,
) -> ConvertResult:
    """Write every case of the source at ``root`` as an nnU-Net v2 raw dataset at ``out``.

    Args:
        root: source folder (any format medssl reads).
        out: dataset folder to write (must be absent or empty unless ``force``).
        to: output layout; only ``"nnunet"``.
        format: reader name, ``None`` to detect.
        include_series: also write the frames of 4D/cine series (to ``imagesTs``).
        channel: the channel's name in ``dataset.json`` (nnU-Net normalises ``CT`` apart).
        force: replace a non-empty ``out``.
        progress: show a progress bar.

    Raises:
        DataErrors: when any file of the source fails a check (nothing is written).
        DataError: unknown target, or ``out`` not empty.
    """
    if to not in TARGETS:
        raise DataError(Path(out), "unknown-target", f"--to {to!r} not in {list(TARGETS)}")
    source = open_source(root, format)
    if source.problems:
        raise DataErrors(source.problems)
    out = Path(out)
    tmp = _prepare_out(out, force)
    names = {"imagesTr": _Names(), "imagesTs": _Names()}
    refs = [r for r in source.refs if include_series or r.kind != "series"]
    errors: list[DataError] = []
    patients: set[str] = set()
    try:
        for ref in tqdm(refs, desc="converting", unit="vol", disable=not progress):
            try:
                for case in ref.load():
                    _write_case(tmp, case, names)
                    patients.add(case.patient_id)
            except DataError as err:
                errors.append(err)
        if errors:
            raise DataErrors(errors)
        n_train = len(names["imagesTr"].used)
        spec = _dataset_json(source, n_train, channel)
        (tmp / "dataset.json").write_text(json.dumps(spec, indent=2) + "\n")
        _swap_into_place(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = ConvertResult(out, n_train, len(names["imagesTs"].used), len(patients))
    log.info(
        "wrote %d labelled and %d unlabelled volumes of %d patients to %s",
        result.labelled,
        result.unlabelled,
        result.patients,
        out,
    )
    return result
