"""Reader for the official ACDC layout.

``{training,testing}/patientXXX/`` holds ``Info.cfg`` (ED, ES, Group, Height,
NbFrame, Weight; ED and ES are 1-based frame numbers), the labelled frames
``patientXXX_frameYY.nii.gz`` with ``patientXXX_frameYY_gt.nii.gz``, and the cine
series ``patientXXX_4d.nii.gz`` of shape ``(X, Y, Z, T)`` whose frames form the
unlabelled pool. Patient folders directly under the root are accepted too.

All three places are read into the cache, but patients of ``testing/`` (the official
test set, 101–150) are never mixed into the study's split: the split
(:func:`medssl.data.splits.split_for_cache`) puts them in ``official-test`` and
computes train/val/test over the ``training/`` (or root-level) patients only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from medssl.artifacts.labels import ACDC_LABELS
from medssl.data.case import Case, PatientMeta, Phase, VolumeRef
from medssl.data.checks import check_finite
from medssl.data.nifti import read_header, read_nifti, spacing_from_zooms, to_slices
from medssl.data.readers.base import Source
from medssl.data.readers.nifti_cases import labelled_case
from medssl.errors import DataError

REQUIRED_KEYS = ("ED", "ES", "NbFrame", "Height", "Weight")

#: Folders of the official layout: training patients (001–100), test patients (101–150).
OFFICIAL_TRAIN_DIR = "training"
OFFICIAL_TEST_DIR = "testing"


def find_patient_dirs(root: Path) -> list[Path]:
    """Patient folders (holding ``Info.cfg``) under ``root``, ``training/``, ``testing/``."""
    dirs: list[Path] = []
    for base in (root, root / OFFICIAL_TRAIN_DIR, root / OFFICIAL_TEST_DIR):
        if base.is_dir():
            dirs.extend(p.parent for p in base.glob("*/Info.cfg"))
    return sorted(set(dirs), key=lambda p: (p.name, str(p)))


def parse_info_cfg(path: Path, need_group: bool) -> PatientMeta:
    """Parse and check an ``Info.cfg``; raise DataError naming the file on any problem."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, "info-cfg", f"cannot read ({exc})") from exc
    values: dict[str, str] = {}
    for line in text.splitlines():
        if ":" in line:
            key, _, val = line.partition(":")
            values[key.strip()] = val.strip()
    required = (*REQUIRED_KEYS, "Group") if need_group else REQUIRED_KEYS
    missing = [k for k in required if k not in values]
    if missing:
        raise DataError(path, "info-cfg", f"missing keys {missing}")
    try:
        n_frames, ed, es = int(values["NbFrame"]), int(values["ED"]), int(values["ES"])
        height, weight = float(values["Height"]), float(values["Weight"])
    except ValueError as exc:
        raise DataError(path, "info-cfg", f"non-numeric value ({exc})") from exc
    for key, frame in (("ED", ed), ("ES", es)):
        if not 1 <= frame <= n_frames:
            raise DataError(path, "info-cfg", f"{key}={frame} outside 1..NbFrame={n_frames}")
    return PatientMeta(values.get("Group"), height, weight, n_frames, ed, es)


def _load_labelled(ref: VolumeRef) -> Iterator[Case]:
    yield labelled_case(ref, *ref.files, dict(ACDC_LABELS.names))


def _load_series(ref: VolumeRef) -> Iterator[Case]:
    (path,) = ref.files
    vol = read_nifti(path, 4)
    check_finite(path, vol.data)
    n_t = vol.data.shape[3]
    if ref.meta.n_frames is not None and n_t != ref.meta.n_frames:
        raise DataError(
            path, "frame-count", f"{n_t} frames but Info.cfg NbFrame={ref.meta.n_frames}"
        )
    ed_file = path.parent / f"{ref.patient_id}_frame{ref.meta.ed_frame or 1:02d}.nii.gz"
    if ed_file.exists():
        shape3 = read_header(ed_file, 3).header.get_data_shape()[:3]
        if tuple(shape3) != vol.data.shape[:3]:
            raise DataError(
                path, "shape-mismatch", f"frames {vol.data.shape[:3]} != {ed_file.name} {shape3}"
            )
    spacing = spacing_from_zooms(vol.zooms)
    for t in range(n_t):
        frame = t + 1
        phase = {ref.meta.ed_frame: Phase.ED, ref.meta.es_frame: Phase.ES}.get(frame, Phase.NONE)
        yield Case(
            ref.patient_id,
            to_slices(vol.data[..., t]),
            None,
            spacing,
            phase,
            frame,
            ref.meta,
            ref.files,
            vol.affine,
        )


def _patient_refs(pdir: Path, meta: PatientMeta) -> tuple[list[VolumeRef], list[DataError]]:
    pid = pdir.name
    refs: list[VolumeRef] = []
    problems: list[DataError] = []
    for phase, frame in ((Phase.ED, meta.ed_frame), (Phase.ES, meta.es_frame)):
        img = pdir / f"{pid}_frame{frame:02d}.nii.gz"
        gt = pdir / f"{pid}_frame{frame:02d}_gt.nii.gz"
        missing = [p for p in (img, gt) if not p.exists()]
        if missing:
            problems.extend(
                DataError(
                    p, "missing-frame", f"{phase} frame {frame} named in Info.cfg has no file"
                )
                for p in missing
            )
            continue
        refs.append(VolumeRef(pid, "labelled", (img, gt), _load_labelled, phase, frame, meta))
    series = pdir / f"{pid}_4d.nii.gz"
    if series.exists():
        refs.append(VolumeRef(pid, "series", (series,), _load_series, Phase.NONE, None, meta))
    return refs, problems


def read_acdc(root: Path) -> Source:
    """List an ACDC-layout folder; see the module docstring for the layout."""
    refs: list[VolumeRef] = []
    problems: list[DataError] = []
    for pdir in find_patient_dirs(root):
        try:
            meta = parse_info_cfg(
                pdir / "Info.cfg", need_group=pdir.parent.name != OFFICIAL_TEST_DIR
            )
        except DataError as err:
            problems.append(err)
            continue
        p_refs, p_problems = _patient_refs(pdir, meta)
        refs.extend(p_refs)
        problems.extend(p_problems)
    return Source(root, "acdc", refs, ACDC_LABELS, problems)
