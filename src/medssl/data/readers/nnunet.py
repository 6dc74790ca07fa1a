"""Reader for an nnU-Net raw dataset (v2 layout, v1 ``dataset.json`` accepted).

``dataset.json`` declares ``channel_names`` (one channel supported), ``labels``
(v2: ``{name: value}``; v1: ``{"value": name}``), ``numTraining`` and
``file_ending``: a volume format (``.nii.gz``, ``.nii``, ``.nrrd``, ``.mha``; spacing
and affine from the headers) or nnU-Net's 2D layout (``.png``, ``.tif``, ``.tiff``:
one-slice cases without spacing, see :mod:`medssl.data.readers.image2d`). Training
cases are ``imagesTr/CASE_0000{ending}`` with ``labelsTr/CASE{ending}``;
``imagesTs/CASE_0000{ending}`` are read as unlabelled volumes. Case names of the form
``patientXXX_frameYY`` are grouped by patient, the lower of two frames taken as ED.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from medssl.artifacts.labels import LabelSet
from medssl.data.case import Case, VolumeRef
from medssl.data.image2d import IMAGE2D_SUFFIXES
from medssl.data.readers.base import (
    Source,
    parse_label_names,
    phases_by_frame_order,
    split_frame_name,
)
from medssl.data.readers.image2d import image2d_case
from medssl.data.readers.nifti_cases import image_case, labelled_case
from medssl.data.volumes import VOLUME_SUFFIXES
from medssl.errors import DataError

#: ``file_ending`` values read: volumes, and nnU-Net's 2D layout.
FILE_ENDINGS = (*VOLUME_SUFFIXES, *IMAGE2D_SUFFIXES)


def parse_dataset_json(path: Path) -> tuple[dict[int, str], str, int]:
    """Return ``(labels {value: name}, file_ending, numTraining)``; DataError on problems."""
    try:
        spec = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(path, "dataset-json", f"not valid JSON ({exc})") from exc
    if not isinstance(spec, dict):
        raise DataError(path, "dataset-json", f"top level is {type(spec).__name__}, not an object")
    missing = [k for k in ("labels", "numTraining") if k not in spec]
    if "channel_names" not in spec and "modality" not in spec:
        missing.append("channel_names")
    if missing:
        raise DataError(path, "dataset-json", f"missing keys {missing}")
    channels = spec.get("channel_names", spec.get("modality"))
    if not isinstance(channels, dict | list) or len(channels) != 1:
        raise DataError(path, "dataset-json", f"channel_names {channels!r}; medssl reads one")
    ending = spec.get("file_ending", ".nii.gz")
    if ending not in FILE_ENDINGS:
        raise DataError(
            path, "dataset-json", f"file_ending {ending!r} not in {', '.join(FILE_ENDINGS)}"
        )
    labels = parse_label_names(path, spec["labels"], "dataset-json")
    try:
        n_train = int(spec["numTraining"])
    except (TypeError, ValueError) as exc:
        raise DataError(path, "dataset-json", f"bad numTraining ({exc})") from exc
    return labels, ending, n_train


def _make_loader(labels: dict[int, str], flat: bool):
    def load(ref: VolumeRef) -> Iterator[Case]:
        if flat:
            mask = ref.files[1] if ref.kind == "labelled" else None
            yield image2d_case(ref, ref.files[0], mask, labels)
        elif ref.kind == "unlabelled":
            yield image_case(ref, ref.files[0])
        else:
            yield labelled_case(ref, *ref.files, labels)

    return load


def _case_ids(folder: Path, ending: str, suffix: str) -> list[str]:
    tail = suffix + ending
    return sorted(p.name[: -len(tail)] for p in folder.glob(f"*{tail}")) if folder.is_dir() else []


def read_nnunet(root: Path) -> Source:
    """List an nnU-Net raw dataset folder (holding ``dataset.json``)."""
    labels, ending, n_train = parse_dataset_json(root / "dataset.json")
    problems: list[DataError] = []
    label_ids = _case_ids(root / "labelsTr", ending, "")
    if len(label_ids) != n_train:
        problems.append(
            DataError(
                root / "dataset.json",
                "dataset-json",
                f"numTraining={n_train} but labelsTr holds {len(label_ids)} cases",
            )
        )
    flat = ending in IMAGE2D_SUFFIXES
    loader = _make_loader(labels, flat)
    names = {cid: split_frame_name(cid) for cid in label_ids}
    phases = phases_by_frame_order(list(names.values()))
    refs: list[VolumeRef] = []
    for cid in label_ids:
        img = root / "imagesTr" / f"{cid}_0000{ending}"
        if not img.exists():
            problems.append(DataError(img, "missing-file", f"label {cid}{ending} has no image"))
            continue
        pid, frame = names[cid]
        refs.append(
            VolumeRef(
                pid,
                "labelled",
                (img, root / "labelsTr" / f"{cid}{ending}"),
                loader,
                phases[(pid, frame)],
                frame,
            )
        )
    orphans = sorted(set(_case_ids(root / "imagesTr", ending, "_0000")) - set(label_ids))
    problems.extend(
        DataError(
            root / "imagesTr" / f"{c}_0000{ending}",
            "missing-file",
            "image has no label in labelsTr",
        )
        for c in orphans
    )
    for cid in _case_ids(root / "imagesTs", ending, "_0000"):
        pid, frame = split_frame_name(cid)
        refs.append(
            VolumeRef(
                pid, "unlabelled", (root / "imagesTs" / f"{cid}_0000{ending}",), loader, frame=frame
            )
        )
    return Source(
        root, "nnunet", refs, LabelSet.from_names(labels), problems, spacing_known=not flat
    )
