"""Validation of a whole source: decode every voxel, summarise, list every problem."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from medssl.data.case import Case, PatientMeta
from medssl.data.readers import Source, open_source
from medssl.errors import DataError

log = logging.getLogger(__name__)


def _widen(rng: list[float] | None, lo: float, hi: float) -> list[float]:
    return [lo, hi] if rng is None else [min(rng[0], lo), max(rng[1], hi)]


@dataclass
class CheckReport:
    """What :func:`check_source` found.

    Counts cover only records that decoded without problems.
    """

    root: Path
    format: str
    patients: set[str] = field(default_factory=set)
    labelled_volumes: int = 0
    labelled_slices: int = 0
    unlabelled_volumes: int = 0
    unlabelled_slices: int = 0
    series_frames: int = 0
    series_slices: int = 0
    shape_min: list[int] | None = None
    shape_max: list[int] | None = None
    spacing_min: list[float] | None = None
    spacing_max: list[float] | None = None
    spacing_unknown: int = 0
    label_values: set[int] = field(default_factory=set)
    intensity: list[float] | None = None
    patient_meta: dict[str, PatientMeta] = field(default_factory=dict)
    problems: list[DataError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, case: Case, from_series: bool) -> None:
        """Fold one decoded case into the summary."""
        self.patients.add(case.patient_id)
        self.patient_meta.setdefault(case.patient_id, case.meta)
        shape = list(case.image.shape)
        self.shape_min = (
            shape if self.shape_min is None else np.minimum(self.shape_min, shape).tolist()
        )
        self.shape_max = (
            shape if self.shape_max is None else np.maximum(self.shape_max, shape).tolist()
        )
        if case.spacing is None:
            self.spacing_unknown += 1
        else:
            sp = list(case.spacing)
            self.spacing_min = (
                sp if self.spacing_min is None else np.minimum(self.spacing_min, sp).tolist()
            )
            self.spacing_max = (
                sp if self.spacing_max is None else np.maximum(self.spacing_max, sp).tolist()
            )
        self.intensity = _widen(self.intensity, float(case.image.min()), float(case.image.max()))
        if case.label is not None:
            self.labelled_volumes += 1
            self.labelled_slices += case.n_slices
            self.label_values.update(np.unique(case.label).tolist())
        elif from_series:
            self.series_frames += 1
            self.series_slices += case.n_slices
        else:
            self.unlabelled_volumes += 1
            self.unlabelled_slices += case.n_slices

    def summary_rows(self) -> list[tuple[str, str]]:
        """``(name, value)`` rows for a summary table."""

        def fmt(v: Iterable[float] | None) -> str:
            return "-" if v is None else " x ".join(f"{x:g}" for x in v)

        spacing = f"{fmt(self.spacing_min)} .. {fmt(self.spacing_max)} mm"
        if self.spacing_unknown:
            spacing += f" ({self.spacing_unknown} volumes without spacing: distances in pixels)"
        return [
            ("source", f"{self.root} ({self.format})"),
            ("patients", str(len(self.patients))),
            ("labelled volumes", str(self.labelled_volumes)),
            ("labelled slices", str(self.labelled_slices)),
            ("4D frames", str(self.series_frames)),
            ("4D frame slices", str(self.series_slices)),
            ("other unlabelled volumes", str(self.unlabelled_volumes)),
            ("other unlabelled slices", str(self.unlabelled_slices)),
            ("shape (slices x H x W)", f"{fmt(self.shape_min)} .. {fmt(self.shape_max)}"),
            ("spacing (slice x row x col)", spacing),
            ("label values", ", ".join(map(str, sorted(self.label_values))) or "-"),
            ("intensity range", fmt(self.intensity).replace(" x ", " .. ")),
            ("patient metadata", describe_meta(list(self.patient_meta.values()))),
            ("problems", str(len(self.problems))),
        ]


def describe_meta(metas: list[PatientMeta]) -> str:
    """One line over patients' metadata: the range of age, height and weight and the
    count of each sex, each with how many patients gave it; ``-`` when none did."""
    parts = []
    for name, unit in (("age_years", "y"), ("height_cm", "cm"), ("weight_kg", "kg")):
        values = [v for m in metas if (v := getattr(m, name)) is not None]
        if values:
            label = name.split("_")[0]
            parts.append(f"{label} {min(values):g} .. {max(values):g} {unit} ({len(values)})")
    sexes = [m.sex for m in metas if m.sex is not None]
    if sexes:
        parts.append("sex " + " ".join(f"{s} {sexes.count(s)}" for s in sorted(set(sexes))))
    return ", ".join(parts) or "-"


def check_source(
    root: str | Path, format: str | None = None, progress: bool = False
) -> CheckReport:
    """Decode every record of a source, collecting a summary and every problem.

    Args:
        root: source folder.
        format: reader name, or ``None`` to detect.
        progress: show a progress bar.

    Returns:
        The report; ``report.ok`` is False when any file failed a check.

    Raises:
        DataError: only when the folder itself cannot be listed (missing, unknown format,
            unreadable ``dataset.json``).
    """
    source: Source = open_source(root, format)
    report = CheckReport(Path(root), source.format, problems=list(source.problems))
    for ref in tqdm(source.refs, desc="checking", unit="vol", disable=not progress):
        try:
            cases = list(ref.load())
        except DataError as err:
            log.debug("problem: %s", err)
            report.problems.append(err)
            continue
        for case in cases:
            report.add(case, from_series=ref.kind == "series")
    return report
