"""Bad inputs: every broken source file is refused by name and check, and nothing is lost.

Each case builds a good tiny source, breaks exactly one file (or removes or adds one),
then checks that

* ``medssl data check`` exits non-zero and prints ``PROBLEM <file>: [<check>] ...``
  lines that all name that file and that check;
* ``medssl data prepare`` exits non-zero, prints ``error: <file>: [<check>] ...`` on
  stderr (one line per problem, no traceback) and leaves no cache or temporary folder;
* a good cache built earlier at the same ``--out`` stays byte-for-byte as it was and
  still opens.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest

from medssl.cli import main
from medssl.data.cache_read import SliceCache
from medssl.data.nifti import write_nifti
from tests import builders

NIFTI_HEADER_BYTES = 348
ABSURD = 30000  # per spatial axis: 30000**3 voxels, about 54 TB as int16

#: A breaker damages the file at the given path in place (or removes/creates it) and
#: returns the expected check when it depends on the file's bytes, else ``None``.
Breaker = Callable[[Path], str | None]

LAYOUTS: dict[str, Callable[[Path], Path]] = {
    "acdc": lambda root: builders.make_acdc(root, n_patients=2),
    "h5": lambda root: builders.make_h5(root, n_patients=2),
    "nnunet": lambda root: builders.make_nnunet(root, n_cases=2, n_test=1),
    "nifti-folder": lambda root: builders.make_nifti_folder(root, n=2),
}


@dataclass(frozen=True)
class BadInput:
    """One bad-input case.

    Attributes:
        layout: key of :data:`LAYOUTS`.
        target: path, relative to the source root, of the file that is broken.
        breaker: what is done to it.
        check: the ``[check]`` tag every reported problem must carry.
        named: the path every problem must name, when not ``target``.
    """

    layout: str
    target: str
    breaker: Breaker
    check: str
    named: str | None = None


# --- breakers: raw bytes ------------------------------------------------------------


def _zero_bytes(path: Path) -> None:
    path.write_bytes(b"")


def _cut_at(where: float | int) -> Breaker:
    """Keep the first ``where`` bytes (an int) or that fraction of them (a float < 1).

    A negative int drops that many bytes from the end. For NIfTI the expected check
    is ``bad-header`` when nibabel cannot parse a header from the kept bytes (it
    sniffs up to 540 decompressed bytes), else ``truncated``; for h5 ``unreadable``.
    """

    def cut(path: Path) -> str:
        raw = path.read_bytes()
        if isinstance(where, float):
            n = int(len(raw) * where)
        else:
            n = where if where > 0 else len(raw) + where
        assert 0 < n < len(raw)
        path.write_bytes(raw[:n])
        if path.name.endswith(".h5"):
            return "unreadable"
        try:
            nib.load(path)
        except Exception:  # any failure to load means the header is gone
            return "bad-header"
        return "truncated"

    return cut


def _not_gzip(path: Path) -> None:
    path.write_bytes(gzip.decompress(path.read_bytes()))  # raw .nii bytes, .gz name kept


def _bad_crc(path: Path) -> None:
    """Flip the stored CRC32 (bytes -8..-4): every byte of data still inflates."""
    raw = bytearray(path.read_bytes())
    raw[-8] ^= 0xFF
    path.write_bytes(bytes(raw))


def _patch_header(fmt: str, offset: int, *values: float) -> Breaker:
    """Overwrite header fields (``struct`` format ``fmt`` at byte ``offset``) of a .nii.gz."""

    def patch(path: Path) -> None:
        raw = bytearray(gzip.decompress(path.read_bytes()))
        assert struct.unpack_from("<i", raw, 0)[0] == NIFTI_HEADER_BYTES
        struct.pack_into(fmt, raw, offset, *values)
        path.write_bytes(gzip.compress(bytes(raw)))

    return patch


def _absurd_header(path: Path) -> None:
    """Patch dim[1..3] of the NIfTI-1 header (int16 at byte 42) to 30000 each."""
    raw = bytearray(gzip.decompress(path.read_bytes()))
    assert struct.unpack_from("<i", raw, 0)[0] == NIFTI_HEADER_BYTES
    struct.pack_into("<3h", raw, 42, ABSURD, ABSURD, ABSURD)
    path.write_bytes(gzip.compress(bytes(raw)))


# --- breakers: rewritten NIfTI contents ---------------------------------------------


def _rewrite(
    data_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    affine_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    dtype: type | None = None,
) -> Breaker:
    """Rewrite a NIfTI file with its data and/or affine changed."""

    def rewrite(path: Path) -> None:
        img = nib.load(path)
        data = np.asanyarray(img.dataobj)
        data = data if data_fn is None else data_fn(data)
        affine = img.affine if affine_fn is None else affine_fn(img.affine.copy())
        write_nifti(path, data, affine, dtype=dtype or data.dtype)

    return rewrite


def _set_first_voxel(value: float, dtype: type) -> Breaker:
    def put(data: np.ndarray) -> np.ndarray:
        data = data.astype(dtype)
        data.flat[0] = value
        return data

    return _rewrite(put, dtype=dtype)


def _shift_origin(affine: np.ndarray) -> np.ndarray:
    affine[:3, 3] += (5.0, -3.0, 0.0)
    return affine


def _rotate_in_plane(affine: np.ndarray) -> np.ndarray:
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    affine[:3, :3] = rot @ affine[:3, :3]  # same column norms, so the same zooms
    return affine


def _stretch_x(affine: np.ndarray) -> np.ndarray:
    affine[:3, 0] *= 1.2  # x spacing 1.25 -> 1.5 mm
    return affine


def _as_4d(data: np.ndarray) -> np.ndarray:
    return np.stack([data, data], axis=-1)


def _first_frame(data: np.ndarray) -> np.ndarray:
    return data[..., 0]


def _drop_frame(data: np.ndarray) -> np.ndarray:
    return data[..., :-1]


def _crop_x(data: np.ndarray) -> np.ndarray:
    return data[:-2]


# --- breakers: metadata and folder contents -----------------------------------------


def _edit_info(key: str, value: str | None) -> Breaker:
    """Set ``key`` of an Info.cfg to ``value``, or drop the line when ``value`` is None."""

    def edit(path: Path) -> None:
        lines = [ln for ln in path.read_text().splitlines() if not ln.startswith(f"{key}:")]
        if value is not None:
            lines.append(f"{key}: {value}")
        path.write_text("\n".join(lines) + "\n")

    return edit


def _edit_json(**changes: object) -> Breaker:
    def edit(path: Path) -> None:
        spec = json.loads(path.read_text())
        spec.update(changes)
        path.write_text(json.dumps(spec))

    return edit


def _remove(path: Path) -> None:
    path.unlink()


def _add_orphan_image(path: Path) -> None:
    builders.write_pair(path, None, seed=77)


def _write_text(text: str) -> Breaker:
    def write(path: Path) -> None:
        path.write_text(text)

    return write


# --- breakers: h5 --------------------------------------------------------------------


def _h5_edit(edit: Callable[[h5py.File], None]) -> Breaker:
    def apply(path: Path) -> None:
        with h5py.File(path, "a") as fh:
            edit(fh)

    return apply


def _h5_replace(name: str, fn: Callable[[np.ndarray], np.ndarray]) -> Breaker:
    def edit(fh: h5py.File) -> None:
        data = fn(fh[name][()])
        del fh[name]
        fh[name] = data

    return _h5_edit(edit)


def _h5_drop_label(fh: h5py.File) -> None:
    del fh["label"]


def _h5_absurd_image(fh: h5py.File) -> None:
    del fh["image"]  # a chunked dataset with no chunks written: the file stays small
    fh.create_dataset("image", shape=(ABSURD, ABSURD, ABSURD), dtype="f4", chunks=(1, 64, 64))


def _with_nan(data: np.ndarray) -> np.ndarray:
    data = data.astype(np.float32)
    data.flat[5] = np.nan
    return data


def _with_value(value: int) -> Callable[[np.ndarray], np.ndarray]:
    def put(data: np.ndarray) -> np.ndarray:
        data = data.copy()
        data.flat[0] = value
        return data

    return put


# --- the cases -----------------------------------------------------------------------

P1 = "training/patient001"
P2 = "training/patient002"
NIFTI_TARGETS = {  # id -> (layout, file); every reader's kinds of NIfTI file
    "acdc-image": ("acdc", f"{P1}/patient001_frame01.nii.gz"),
    "acdc-gt": ("acdc", f"{P1}/patient001_frame03_gt.nii.gz"),
    "acdc-4d": ("acdc", f"{P2}/patient002_4d.nii.gz"),
    "nnunet-image": ("nnunet", "imagesTr/case_001_0000.nii.gz"),
    "nnunet-label": ("nnunet", "labelsTr/case_002.nii.gz"),
    "nnunet-test": ("nnunet", "imagesTs/test_001_0000.nii.gz"),
    "folder-3d": ("nifti-folder", "scan1.nii.gz"),
    "folder-4d": ("nifti-folder", "cine.nii.gz"),
}
IMAGE_TARGETS = ["acdc-image", "acdc-4d", "nnunet-image", "nnunet-test", "folder-3d", "folder-4d"]
LABEL_TARGETS = ["acdc-gt", "nnunet-label"]

BYTE_BREAKERS: dict[str, tuple[Breaker, str]] = {  # the check is overridden by cuts
    "zero-bytes": (_zero_bytes, "empty-file"),
    "cut-100-bytes": (_cut_at(100), "bad-header"),
    "cut-30pct": (_cut_at(0.30), "truncated"),
    "cut-60pct": (_cut_at(0.60), "truncated"),
    "cut-95pct": (_cut_at(0.95), "truncated"),
    "cut-gzip-trailer": (_cut_at(-4), "truncated"),
    "not-gzip": (_not_gzip, "not-gzip"),
    "bad-crc": (_bad_crc, "corrupt-gzip"),
    "absurd-size": (_absurd_header, "absurd-size"),
    "negative-dim": (_patch_header("<h", 44, -24), "absurd-size"),  # dim[2]
    "zero-spacing": (_patch_header("<f", 80, 0.0), "bad-spacing"),  # pixdim[1]
    "nan-spacing": (_patch_header("<f", 84, float("nan")), "bad-spacing"),  # pixdim[2]
}
IMAGE_BREAKERS: dict[str, tuple[Breaker, str]] = {
    "nan": (_set_first_voxel(np.nan, np.float32), "non-finite"),
    "inf": (_set_first_voxel(np.inf, np.float32), "non-finite"),
}
LABEL_BREAKERS: dict[str, tuple[Breaker, str]] = {
    "label-4": (_set_first_voxel(4, np.uint8), "label-values"),
    "label-255": (_set_first_voxel(255, np.uint8), "label-values"),
    "label-minus-1": (_set_first_voxel(-1, np.int16), "label-values"),
    "label-1.5": (_set_first_voxel(1.5, np.float32), "non-integer-labels"),
    "label-nan": (_set_first_voxel(np.nan, np.float32), "label-values"),
    "shape-mismatch": (_rewrite(_crop_x), "shape-mismatch"),
    "spacing-mismatch": (_rewrite(affine_fn=_stretch_x), "spacing-mismatch"),
    "affine-origin-mismatch": (_rewrite(affine_fn=_shift_origin), "affine-mismatch"),
    "affine-rotation-mismatch": (_rewrite(affine_fn=_rotate_in_plane), "affine-mismatch"),
}


def _matrix() -> dict[str, BadInput]:
    cases: dict[str, BadInput] = {}
    for tid, (layout, target) in NIFTI_TARGETS.items():
        for bid, (breaker, check) in BYTE_BREAKERS.items():
            cases[f"{tid}-{bid}"] = BadInput(layout, target, breaker, check)
    for groups, breakers in ((IMAGE_TARGETS, IMAGE_BREAKERS), (LABEL_TARGETS, LABEL_BREAKERS)):
        for tid in groups:
            layout, target = NIFTI_TARGETS[tid]
            for bid, (breaker, check) in breakers.items():
                cases[f"{tid}-{bid}"] = BadInput(layout, target, breaker, check)
    return cases


CASES: dict[str, BadInput] = {
    **_matrix(),
    # ACDC: dimensionality, frames, Info.cfg
    "acdc-image-is-4d": BadInput(
        "acdc", f"{P1}/patient001_frame01.nii.gz", _rewrite(_as_4d), "dimensionality"
    ),
    "acdc-gt-is-4d": BadInput(
        "acdc", f"{P1}/patient001_frame01_gt.nii.gz", _rewrite(_as_4d), "dimensionality"
    ),
    "acdc-4d-is-3d": BadInput(
        "acdc", f"{P1}/patient001_4d.nii.gz", _rewrite(_first_frame), "dimensionality"
    ),
    "acdc-4d-frames-ne-nbframe": BadInput(
        "acdc", f"{P1}/patient001_4d.nii.gz", _rewrite(_drop_frame), "frame-count"
    ),
    "acdc-4d-shape-ne-frames": BadInput(
        "acdc", f"{P2}/patient002_4d.nii.gz", _rewrite(_crop_x), "shape-mismatch"
    ),
    "acdc-missing-ed-image": BadInput(
        "acdc", f"{P1}/patient001_frame01.nii.gz", _remove, "missing-frame"
    ),
    "acdc-missing-es-gt": BadInput(
        "acdc", f"{P2}/patient002_frame03_gt.nii.gz", _remove, "missing-frame"
    ),
    "acdc-info-missing-key": BadInput("acdc", f"{P1}/Info.cfg", _edit_info("ED", None), "info-cfg"),
    "acdc-info-es-gt-nbframe": BadInput(
        "acdc", f"{P1}/Info.cfg", _edit_info("ES", "6"), "info-cfg"
    ),
    "acdc-info-ed-zero": BadInput("acdc", f"{P2}/Info.cfg", _edit_info("ED", "0"), "info-cfg"),
    "acdc-info-non-numeric": BadInput(
        "acdc", f"{P1}/Info.cfg", _edit_info("NbFrame", "five"), "info-cfg"
    ),
    # h5
    "h5-zero-bytes": BadInput("h5", "patient001_frame01.h5", _zero_bytes, "empty-file"),
    "h5-cut-100-bytes": BadInput("h5", "patient001_frame01.h5", _cut_at(100), "unreadable"),
    "h5-cut-30pct": BadInput("h5", "patient001_frame12.h5", _cut_at(0.30), "unreadable"),
    "h5-cut-60pct": BadInput("h5", "patient002_frame01.h5", _cut_at(0.60), "unreadable"),
    "h5-cut-95pct": BadInput("h5", "patient002_frame12.h5", _cut_at(0.95), "unreadable"),
    "h5-no-label": BadInput(
        "h5", "patient001_frame12.h5", _h5_edit(_h5_drop_label), "missing-dataset"
    ),
    "h5-nan-image": BadInput(
        "h5", "patient002_frame01.h5", _h5_replace("image", _with_nan), "non-finite"
    ),
    "h5-shape-mismatch": BadInput(
        "h5", "patient001_frame01.h5", _h5_replace("label", lambda a: a[:, :-2]), "shape-mismatch"
    ),
    "h5-label-4": BadInput(
        "h5", "patient002_frame12.h5", _h5_replace("label", _with_value(4)), "label-values"
    ),
    "h5-image-2d": BadInput(
        "h5", "patient001_frame01.h5", _h5_replace("image", lambda a: a[0]), "dimensionality"
    ),
    "h5-absurd-size": BadInput(
        "h5", "patient002_frame01.h5", _h5_edit(_h5_absurd_image), "absurd-size"
    ),
    # nnU-Net: dataset.json against the files
    "nnunet-numtraining-wrong": BadInput(
        "nnunet", "dataset.json", _edit_json(numTraining=5), "dataset-json"
    ),
    "nnunet-label-without-image": BadInput(
        "nnunet", "imagesTr/case_002_0000.nii.gz", _remove, "missing-file"
    ),
    "nnunet-image-without-label": BadInput(
        "nnunet", "imagesTr/case_009_0000.nii.gz", _add_orphan_image, "missing-file"
    ),
    "nnunet-image-is-4d": BadInput(
        "nnunet", "imagesTr/case_001_0000.nii.gz", _rewrite(_as_4d), "dimensionality"
    ),
}

#: Sources whose folder cannot be listed at all: one ``error:`` line, no report.
UNLISTABLE: dict[str, tuple[str, Breaker]] = {
    "invalid-json": ("dataset.json", _write_text('{"labels": {"background": 0,')),
    "json-not-utf8": ("dataset.json", lambda p: p.write_bytes(b"\xff\xfe{}")),
    "json-missing-labels": (
        "dataset.json",
        _write_text('{"channel_names": {"0": "MRI"}, "numTraining": 2}'),
    ),
    "json-two-channels": ("dataset.json", _edit_json(channel_names={"0": "T1", "1": "T2"})),
    "json-file-ending-jpg": ("dataset.json", _edit_json(file_ending=".jpg")),  # lossy: not read
    "json-file-ending-mhd": ("dataset.json", _edit_json(file_ending=".mhd")),  # detached header
    "json-labels-not-int": ("dataset.json", _edit_json(labels={"background": "zero"})),
    "json-labels-list": ("dataset.json", _edit_json(labels=["background", "RV"])),
    "json-channels-number": ("dataset.json", _edit_json(channel_names=1)),
    "json-not-an-object": ("dataset.json", _write_text("42")),
    "json-null": ("dataset.json", _write_text("null")),
}


# --- helpers -------------------------------------------------------------------------


def _build(tmp_path: Path, layout: str) -> Path:
    return LAYOUTS[layout](tmp_path / "src")


def _break(root: Path, case: BadInput) -> tuple[Path, str]:
    """Apply the case; return the path every problem must name and the expected check."""
    check = case.breaker(root / case.target) or case.check
    return root / (case.named or case.target), check


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _prepare(capsys: pytest.CaptureFixture[str], root: Path, out: Path) -> tuple[int, str, str]:
    return _cli(capsys, "data", "prepare", str(root), "--out", str(out))


def _tagged(lines: list[str], prefix: str) -> list[str]:
    return [ln for ln in lines if ln.startswith(prefix)]


def _assert_one_line_each(text: str, named: Path, prefix: str) -> None:
    """Every line that mentions the file is a ``prefix`` line; no traceback anywhere."""
    assert "Traceback" not in text
    for line in text.splitlines():
        if str(named) in line:
            assert line.startswith(prefix), line


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".cache"))


def _snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.blake2b(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


ids = list(CASES)
#: Whether an old cache survives depends on where prepare fails (listing, decoding,
#: fingerprinting), not on which byte broke: one case per (layout, check) is enough.
KEEP_CACHE_IDS = list({(c.layout, c.check): name for name, c in reversed(CASES.items())}.values())


# --- tests ---------------------------------------------------------------------------


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_good_source_passes_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], layout: str
) -> None:
    root = _build(tmp_path, layout)
    code, out, err = _cli(capsys, "data", "check", str(root))
    assert code == 0, out + err
    assert not _tagged(out.splitlines(), "PROBLEM ")
    assert "problems  " in out and out.rstrip().endswith("0")
    assert not _tagged(err.splitlines(), "error: ")


@pytest.mark.parametrize("name", ids)
def test_check_names_file_and_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    root = _build(tmp_path, CASES[name].layout)
    named, check = _break(root, CASES[name])
    code, out, err = _cli(capsys, "data", "check", str(root))
    assert code != 0
    problems = _tagged(out.splitlines(), "PROBLEM ")
    assert problems, out
    for line in problems:
        assert line.startswith(f"PROBLEM {named}: [{check}] "), line
    _assert_one_line_each(out, named, "PROBLEM ")
    assert "Traceback" not in err


@pytest.mark.parametrize("name", ids)
def test_prepare_refuses_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    root = _build(tmp_path, CASES[name].layout)
    named, check = _break(root, CASES[name])
    code, _, err = _prepare(capsys, root, tmp_path / "cache")
    assert code != 0
    errors = _tagged(err.splitlines(), "error: ")
    assert errors, err
    for line in errors:
        assert line.startswith(f"error: {named}: [{check}] "), line
    _assert_one_line_each(err, named, "error: ")
    assert not (tmp_path / "cache").exists()
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("name", KEEP_CACHE_IDS)
def test_failed_prepare_keeps_existing_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    root = _build(tmp_path, CASES[name].layout)
    cache = tmp_path / "cache"
    code, out, err = _prepare(capsys, root, cache)
    assert code == 0, out + err
    before = _snapshot(cache)
    named, check = _break(root, CASES[name])
    code, _, err = _prepare(capsys, root, cache)
    assert code != 0
    assert f"error: {named}: [{check}] " in err
    assert _snapshot(cache) == before
    assert len(SliceCache.open(cache)) > 0
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("name", list(UNLISTABLE))
def test_unlistable_source_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """A folder that cannot be listed: `check` and `prepare` both fail with one line."""
    target, breaker = UNLISTABLE[name]
    root = _build(tmp_path, "nnunet")
    cache = tmp_path / "cache"
    assert _prepare(capsys, root, cache)[0] == 0
    before = _snapshot(cache)
    breaker(root / target)
    prefix = f"error: {root / target}: [dataset-json] "

    code, out, err = _cli(capsys, "data", "check", str(root))
    assert code != 0
    errors = _tagged(err.splitlines(), "error: ")
    assert len(errors) == 1 and errors[0].startswith(prefix), err
    assert not _tagged(out.splitlines(), "PROBLEM ")
    assert "Traceback" not in out + err

    code, out, err = _prepare(capsys, root, tmp_path / "fresh")
    assert code != 0
    errors = _tagged(err.splitlines(), "error: ")
    assert len(errors) == 1 and errors[0].startswith(prefix), err
    assert "Traceback" not in out + err
    assert not (tmp_path / "fresh").exists()

    code, _, err = _prepare(capsys, root, cache)
    assert code != 0 and prefix in err
    assert _snapshot(cache) == before
    SliceCache.open(cache)
    assert _leftovers(tmp_path) == []


def test_each_problem_is_one_line_in_check_and_prepare(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three broken files in two patients: three lines, each naming its own file."""
    root = _build(tmp_path, "acdc")
    broken = {
        root / P1 / "patient001_frame03.nii.gz": ("cut-60pct", "truncated"),
        root / P1 / "patient001_frame01_gt.nii.gz": ("label-4", "label-values"),
        root / P2 / "patient002_4d.nii.gz": ("nan", "non-finite"),
    }
    breakers = {**BYTE_BREAKERS, **LABEL_BREAKERS, **IMAGE_BREAKERS}
    for path, (bid, _) in broken.items():
        breakers[bid][0](path)
    expected = sorted(f"{path}: [{check}]" for path, (_, check) in broken.items())

    code, out, err = _cli(capsys, "data", "check", str(root))
    assert code != 0 and "Traceback" not in out + err
    problems = _tagged(out.splitlines(), "PROBLEM ")
    assert sorted(ln.removeprefix("PROBLEM ").split("] ")[0] + "]" for ln in problems) == expected

    code, out, err = _prepare(capsys, root, tmp_path / "cache")
    assert code != 0 and "Traceback" not in out + err
    errors = _tagged(err.splitlines(), "error: ")
    assert sorted(ln.removeprefix("error: ").split("] ")[0] + "]" for ln in errors) == expected
    assert not (tmp_path / "cache").exists() and _leftovers(tmp_path) == []


def test_absurd_header_refused_before_reading_voxels(tmp_path: Path) -> None:
    """The header alone is enough: the refused file holds only a few KB of voxels."""
    root = _build(tmp_path, "nifti-folder")
    path = root / "scan0.nii.gz"
    _absurd_header(path)
    assert path.stat().st_size < 10_000
    shape = nib.load(path).shape
    assert shape[:3] == (ABSURD, ABSURD, ABSURD)


def test_case_ids_cover_every_reader() -> None:
    assert {c.layout for c in CASES.values()} == set(LAYOUTS)
    assert len(CASES) == len(set(CASES))
