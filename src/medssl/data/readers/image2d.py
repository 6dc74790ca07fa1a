"""Reader for folders of 2D slices (PNG, TIFF): ``images/`` with optional ``masks/``.

Layout::

    images/NAME.png      one grayscale slice per file (.png, .tif or .tiff)
    masks/NAME.png       its label map: same stem, integer labels (any of the suffixes)
    labels.json          the label set, nnU-Net style: {"background": 0, "lesion": 1}

Each image is a one-slice case (``(1, H, W)``) with unknown spacing: PNG/TIFF
resolution tags describe print size, not anatomy (nnU-Net's 2D reader ignores them
too), so distances are in pixels. With ``masks/`` every image needs a mask and every
mask an image, and ``labels.json`` declares the label values the masks may hold;
without ``masks/`` the images are an unlabelled pool. The patient id is the stem
(``_frameYY`` stripped, as elsewhere), so each file is its own patient unless names say
otherwise; give slices of one volume a split file to keep them together.

The nnU-Net raw reader reads its 2D layout (``"file_ending": ".png"``) with
:func:`image2d_case` too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path

from medssl.artifacts.labels import UNLABELLED, LabelSet
from medssl.data.case import Case, VolumeRef
from medssl.data.checks import check_finite, check_label_values, check_same_shape
from medssl.data.image2d import is_image2d, read_image2d, strip_image2d_suffix
from medssl.data.readers.base import Source, parse_label_names, split_frame_name
from medssl.errors import DataError

IMAGE_DIR = "images"
MASK_DIR = "masks"
LABELS_FILE = "labels.json"


def holds_image_folder(root: Path) -> bool:
    """True when ``root/images`` holds a PNG or TIFF file."""
    folder = root / IMAGE_DIR
    return folder.is_dir() and any(p.is_file() and is_image2d(p) for p in folder.iterdir())


def image2d_case(
    ref: VolumeRef, img_path: Path, mask_path: Path | None, labels: Iterable[int]
) -> Case:
    """A one-slice case from a 2D image and optional mask (same size, declared labels)."""
    image = read_image2d(img_path)
    check_finite(img_path, image)
    label = None
    if mask_path is not None:
        mask = read_image2d(mask_path, as_mask=True)
        check_same_shape(mask_path, image.shape, mask.shape)
        label = check_label_values(mask_path, mask, labels)[None]
    return Case(ref.patient_id, image[None], label, None, ref.phase, ref.frame, ref.meta, ref.files)


def _load(labels: tuple[int, ...], ref: VolumeRef) -> Iterator[Case]:
    mask = ref.files[1] if ref.kind == "labelled" else None
    yield image2d_case(ref, ref.files[0], mask, labels)


def _by_stem(folder: Path) -> tuple[dict[str, Path], list[DataError]]:
    """``{stem: file}`` of the 2D files directly in ``folder``; a stem twice is a problem."""
    found: dict[str, Path] = {}
    problems: list[DataError] = []
    if not folder.is_dir():
        return found, problems
    for path in sorted(p for p in folder.iterdir() if p.is_file() and is_image2d(p)):
        stem = strip_image2d_suffix(path.name)
        if stem in found:
            problems.append(DataError(path, "duplicate-stem", f"same stem as {found[stem].name}"))
            continue
        found[stem] = path
    return found, problems


def read_labels_json(path: Path) -> LabelSet:
    """The label set of ``labels.json`` (``{name: value}`` or ``{"value": name}``)."""
    if not path.is_file():
        raise DataError(
            path,
            "labels-json",
            f"missing: {MASK_DIR}/ needs it to declare the labels,"
            ' e.g. {"background": 0, "lesion": 1}',
        )
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(path, "labels-json", f"not valid JSON ({exc})") from exc
    if isinstance(raw, dict) and isinstance(raw.get("labels"), dict):
        raw = raw["labels"]
    names = parse_label_names(path, raw, "labels-json")
    try:
        return LabelSet.from_names(names)
    except ValueError as exc:
        raise DataError(path, "labels-json", str(exc)) from exc


def read_image_folder(root: Path) -> Source:
    """List ``images/`` (+ ``masks/``, ``labels.json``) of 2D slices; see the module doc."""
    images, problems = _by_stem(root / IMAGE_DIR)
    labelled = (root / MASK_DIR).is_dir()
    masks, mask_problems = _by_stem(root / MASK_DIR)
    problems.extend(mask_problems)
    labels = read_labels_json(root / LABELS_FILE) if labelled else UNLABELLED
    loader = partial(_load, labels.values)
    refs: list[VolumeRef] = []
    for stem, img in images.items():
        pid, frame = split_frame_name(stem)
        if not labelled:
            refs.append(VolumeRef(pid, "unlabelled", (img,), loader, frame=frame))
        elif stem in masks:
            refs.append(VolumeRef(pid, "labelled", (img, masks[stem]), loader, frame=frame))
        else:
            problems.append(DataError(img, "missing-mask", f"no {MASK_DIR}/{stem}.* beside it"))
    problems.extend(
        DataError(mask, "missing-image", f"no {IMAGE_DIR}/{stem}.* for this mask")
        for stem, mask in masks.items()
        if stem not in images
    )
    return Source(root, "image2d", refs, labels, problems, spacing_known=False)
