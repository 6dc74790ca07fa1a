"""What every reader returns: a listed source with its records and listing problems."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from medssl.artifacts.labels import LabelSet
from medssl.data.case import Phase, VolumeRef
from medssl.errors import DataError

_FRAME_RE = re.compile(r"^(?P<pid>.+?)_frame(?P<frame>\d+)$")
_UNSAFE_RE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class Source:
    """A data source listed by a reader (no voxels decoded yet).

    Attributes:
        root: folder the source was read from.
        format: reader name (``acdc``, ``h5``, ``nnunet``, ``nifti-folder``).
        refs: listed volumes; :meth:`VolumeRef.load` decodes one.
        labels: the label set the reader declares (background only for unlabelled
            pools); :attr:`label_names` is its ``{value: name}`` view.
        problems: structural problems found while listing (missing files, bad
            metadata); the affected records are left out of ``refs``.
    """

    root: Path
    format: str
    refs: list[VolumeRef]
    labels: LabelSet
    problems: list[DataError] = field(default_factory=list)
    spacing_known: bool = True

    @property
    def label_names(self) -> dict[int, str]:
        """``{value: name}`` of the declared labels; empty when none is foreground."""
        return dict(self.labels.names) if self.labels.foreground else {}

    @property
    def patients(self) -> list[str]:
        return sorted({r.patient_id for r in self.refs})


def safe_stem(name: str) -> str:
    """``name`` made safe as a file name: runs of characters other than letters, digits,
    ``.``, ``_`` and ``-`` become ``_`` (e.g. a DICOM ``PatientID`` with spaces)."""
    stem = _UNSAFE_RE.sub("_", name).strip("._")
    if not stem:
        raise ValueError(f"{name!r} has no character usable in a file name")
    return stem


def parse_label_names(path: Path, raw: object, check: str) -> dict[int, str]:
    """``{value: name}`` from nnU-Net's label notation: v2 ``{"background": 0, ...}``
    or v1 ``{"0": "background", ...}``; a DataError with ``check`` names ``path``."""
    try:
        items = raw.items()  # type: ignore[attr-defined]
        if all(str(k).lstrip("-").isdigit() for k, _ in items):  # v1
            return {int(k): str(v) for k, v in items}
        return {int(v): str(k) for k, v in items}  # v2; region lists are not single labels
    except (AttributeError, TypeError, ValueError) as exc:
        raise DataError(path, check, f"bad labels ({exc})") from exc


def split_frame_name(stem: str) -> tuple[str, int | None]:
    """``"patient001_frame12"`` → ``("patient001", 12)``; other names → ``(stem, None)``."""
    m = _FRAME_RE.match(stem)
    if m is None:
        return stem, None
    return m.group("pid"), int(m.group("frame"))


def phases_by_frame_order(
    items: list[tuple[str, int | None]],
) -> dict[tuple[str, int | None], Phase]:
    """Assign ED/ES where a patient has exactly two labelled frames: lower frame = ED.

    This is the convention of the preprocessed ACDC copies, which lack Info.cfg.
    Patients with another number of frames get :attr:`Phase.NONE`.
    """
    by_patient: dict[str, list[int | None]] = defaultdict(list)
    for pid, frame in items:
        by_patient[pid].append(frame)
    phases: dict[tuple[str, int | None], Phase] = {}
    for pid, frames in by_patient.items():
        known = [f for f in frames if f is not None]
        if len(frames) == 2 and len(known) == 2 and known[0] != known[1]:
            lo, hi = sorted(known)
            phases[(pid, lo)] = Phase.ED
            phases[(pid, hi)] = Phase.ES
        else:
            for f in frames:
                phases[(pid, f)] = Phase.NONE
    return phases
