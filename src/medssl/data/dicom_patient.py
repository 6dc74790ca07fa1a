"""Patient metadata from DICOM headers: age, sex, height and weight, nothing else.

Only four Patient Study / Patient module attributes are read, into the fields every
reader fills (:class:`~medssl.data.case.PatientMeta`, in the units of ACDC's
``Info.cfg``): ``PatientAge`` (``nnnD|W|M|Y``) → ``age_years``, ``PatientSex``
(``M``/``F``/``O``) → ``sex``, ``PatientSize`` (m) → ``height_cm``, ``PatientWeight``
(kg) → ``weight_kg``. Names, birth dates, addresses, accession numbers, institutions
and physicians are never read. A value that is absent, empty, zero or malformed is
``None``: metadata never stops an image from being read, and the value itself is never
logged.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable
from dataclasses import fields, replace
from pathlib import Path

import pydicom

from medssl.data.case import PatientMeta

log = logging.getLogger(__name__)

#: Days per ``PatientAge`` unit.
_AGE_UNIT_DAYS = {"D": 1.0, "W": 7.0, "M": 365.25 / 12, "Y": 365.25}
_AGE = re.compile(r"^\s*(\d{1,3})\s*([DWMY])\s*$")
#: The fields this module fills (the others belong to the stack or to other readers).
HEADER_FIELDS = ("age_years", "sex", "height_cm", "weight_kg")


def parse_age(value: object) -> float | None:
    """Years of a DICOM age string (``"045Y"``, ``"006M"``, ``"003W"``, ``"010D"``),
    rounded to 0.01; ``None`` for anything else."""
    m = _AGE.match(str(value or ""))
    if m is None:
        return None
    return round(int(m.group(1)) * _AGE_UNIT_DAYS[m.group(2)] / 365.25, 2)


def parse_sex(value: object) -> str | None:
    """``"M"``, ``"F"`` or ``"O"`` (DICOM's code string), else ``None``."""
    text = str(value or "").strip().upper()
    return text if text in ("M", "F", "O") else None


def _positive(value: object) -> float | None:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) and out > 0 else None


def patient_meta(path: Path, ds: pydicom.Dataset) -> PatientMeta:
    """Age, sex, height (cm, from ``PatientSize`` in m) and weight (kg) of a header.

    Args:
        path: the file, named in the debug line for a malformed value.
        ds: its header.
    """
    raw = {key: ds.get(key) for key in ("PatientAge", "PatientSex", "PatientSize", "PatientWeight")}
    size = _positive(raw["PatientSize"])
    meta = PatientMeta(
        age_years=parse_age(raw["PatientAge"]),
        sex=parse_sex(raw["PatientSex"]),
        height_cm=None if size is None else round(size * 100, 1),
        weight_kg=_positive(raw["PatientWeight"]),
    )
    for key, name in zip(raw, HEADER_FIELDS, strict=True):
        if raw[key] not in (None, "") and getattr(meta, name) is None:
            log.debug("%s: %s is not a valid value; left out", path, key)
    return meta


def merge_meta(metas: Iterable[PatientMeta]) -> PatientMeta:
    """One record from several headers of one patient: each field the first value given."""
    values: dict[str, object] = {}
    for meta in metas:
        for f in fields(meta):
            value = getattr(meta, f.name)
            if value is not None:
                values.setdefault(f.name, value)
    return replace(PatientMeta(), **values)
