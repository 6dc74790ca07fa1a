"""Bad 2D inputs: every broken slice or mask is refused by name and check, in both layouts.

Each case writes a good tiny source (``images/`` + ``masks/``, or nnU-Net's 2D layout),
breaks one file (or removes or adds one), then checks that ``medssl data check`` exits
non-zero with ``PROBLEM <file>: [<check>] ...`` lines that all name that file and check,
and that ``medssl data prepare`` refuses with the same one-line errors and writes no cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from medssl.cli import main
from tests.data.image2d_builders import make_image_folder, make_nnunet_2d, save, slice_pair

#: Breaks the file at the path given (or removes it, or writes it) in place.
Breaker = Callable[[Path], None]

LAYOUTS: dict[str, Callable[[Path], Path]] = {
    "folder": lambda root: make_image_folder(root, n=2),
    "nnunet": lambda root: make_nnunet_2d(root, n_cases=2, n_test=1),
}
#: The first image and the first mask of each layout.
IMAGE = {"folder": "images/case1.png", "nnunet": "imagesTr/case_001_0000.png"}
MASK = {"folder": "masks/case1.png", "nnunet": "labelsTr/case_001.png"}


def _mask_with(value: float, dtype: type, suffix: str = ".png") -> Breaker:
    """Rewrite the mask with one pixel set to ``value`` (as ``dtype``; TIFF for floats)."""

    def rewrite(path: Path) -> None:
        label = slice_pair(1)[1].astype(dtype)
        label[0, 0] = value
        save(path.with_suffix(suffix), label)

    return rewrite


def _crop(path: Path) -> None:
    save(path, slice_pair(1)[1][:-2])


def _rgb(path: Path) -> None:
    rgb = np.repeat(slice_pair(1)[1][..., None], 3, axis=2)
    rgb[..., 0] = 7
    save(path, rgb)


def _cut(n: int) -> Breaker:
    """Keep the first ``n`` bytes (a negative ``n`` drops that many from the end)."""

    def cut(path: Path) -> None:
        path.write_bytes(path.read_bytes()[:n])

    return cut


def _remove(path: Path) -> None:
    path.unlink()


def _not_an_image(path: Path) -> None:
    path.write_bytes(b"this is not a PNG file at all" * 4)


@dataclass(frozen=True)
class Bad2D:
    """Which file of the layout is broken (``image``/``mask``), how, and the check."""

    target: str
    breaker: Breaker
    check: str
    named: str | None = None  # the file every problem names, when not the target


CASES: dict[str, Bad2D] = {
    "mask-size-mismatch": Bad2D("mask", _crop, "shape-mismatch"),
    "mask-out-of-set": Bad2D("mask", _mask_with(7, np.uint8), "label-values"),
    "mask-rgb": Bad2D("mask", _rgb, "rgb-mask"),
    "image-rgb": Bad2D("image", _rgb, "rgb-image"),
    "image-zero-bytes": Bad2D("image", _cut(0), "empty-file"),
    "image-cut-in-pixels": Bad2D("image", _cut(-60), "truncated"),
    "mask-not-an-image": Bad2D("mask", _not_an_image, "unreadable"),
}
#: Cases whose problem names a file other than the broken one, per layout.
FOLDER_ONLY: dict[str, Bad2D] = {
    "missing-mask": Bad2D("mask", _remove, "missing-mask", named="images/case1.png"),
    "missing-image": Bad2D("image", _remove, "missing-image", named="masks/case1.png"),
    "mask-non-integer": Bad2D(
        "mask", _mask_with(1.5, np.float32, ".tif"), "non-integer-labels", named="masks/case1.tif"
    ),
}


def _params() -> list:
    params = [pytest.param(lay, name, id=f"{lay}-{name}") for lay in LAYOUTS for name in CASES]
    params += [pytest.param("folder", name, id=f"folder-{name}") for name in FOLDER_ONLY]
    return params


def _apply(root: Path, layout: str, name: str) -> tuple[Path, str]:
    case = CASES.get(name) or FOLDER_ONLY[name]
    target = root / (IMAGE if case.target == "image" else MASK)[layout]
    case.breaker(target)
    if name == "mask-non-integer":
        target.unlink()  # the float mask is case1.tif; the good case1.png goes
    return root / (case.named or target.relative_to(root)), case.check


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_good_source_passes_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], layout: str
) -> None:
    root = LAYOUTS[layout](tmp_path / "src")
    code, out, err = _run(capsys, "data", "check", str(root))
    assert code == 0, out + err
    assert "PROBLEM" not in out and "without spacing" in out


@pytest.mark.parametrize(("layout", "name"), _params())
def test_check_names_file_and_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], layout: str, name: str
) -> None:
    root = LAYOUTS[layout](tmp_path / "src")
    named, check = _apply(root, layout, name)
    code, out, err = _run(capsys, "data", "check", str(root))
    assert code != 0
    problems = [ln for ln in out.splitlines() if ln.startswith("PROBLEM ")]
    assert problems, out + err
    for line in problems:
        assert line.startswith(f"PROBLEM {named}: [{check}] "), line
    assert "Traceback" not in out + err


@pytest.mark.parametrize(
    ("layout", "name"),
    [("folder", "mask-rgb"), ("nnunet", "mask-out-of-set"), ("folder", "missing-mask")],
)
def test_prepare_refuses_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], layout: str, name: str
) -> None:
    root = LAYOUTS[layout](tmp_path / "src")
    named, check = _apply(root, layout, name)
    code, _, err = _run(capsys, "data", "prepare", str(root), "--out", str(tmp_path / "cache"))
    assert code != 0
    errors = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert errors and all(ln.startswith(f"error: {named}: [{check}] ") for ln in errors), err
    assert not (tmp_path / "cache").exists()


def test_missing_labels_json_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_image_folder(tmp_path / "src")
    (root / "labels.json").unlink()
    code, out, err = _run(capsys, "data", "check", str(root))
    errors = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert code != 0 and len(errors) == 1, out + err
    assert errors[0].startswith(f"error: {root / 'labels.json'}: [labels-json] missing")
