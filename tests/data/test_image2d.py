"""2D image folders (PNG/TIFF slices with masks): both layouts read every pixel back as a
one-slice case without spacing, colour and multi-page files are refused or converted
as documented, and detection stays unambiguous."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medssl.data.cache_read import SliceCache
from medssl.data.cache_write import prepare_cache
from medssl.data.convert import convert_source
from medssl.data.image2d import read_image2d
from medssl.data.readers import detect_format, open_source
from medssl.errors import DataError
from tests import builders
from tests.data.image2d_builders import (
    LABELS,
    make_image_folder,
    make_nnunet_2d,
    save,
    slice_pair,
)


def _cases(root: Path) -> dict[str, list]:
    source = open_source(root)
    assert not source.problems, source.problems
    return {ref.files[0].name: list(ref.load()) for ref in source.refs}


@pytest.mark.parametrize("suffix", [".png", ".tif", ".tiff"])
def test_image_folder_reads_every_pixel_as_one_slice(tmp_path: Path, suffix: str) -> None:
    root = make_image_folder(tmp_path / "src", n=2, suffix=suffix)
    source = open_source(root)
    assert source.format == "image2d" and not source.spacing_known
    assert dict(source.labels.names) == {v: k for k, v in LABELS.items()}
    assert source.labels.cardiac  # RV/MYO/LV named as in ACDC: the roles follow
    for i, name in enumerate(sorted(_cases(root)), start=1):
        (case,) = _cases(root)[name]
        image, label = slice_pair(700 + i)
        assert case.patient_id == f"case{i}" and case.spacing is None and case.affine is None
        assert case.image.shape == (1, *image.shape) and case.image.dtype == np.float32
        np.testing.assert_array_equal(case.image[0], image)
        np.testing.assert_array_equal(case.label[0], label)


def test_nnunet_2d_layout(tmp_path: Path) -> None:
    root = make_nnunet_2d(tmp_path / "nn", n_cases=2, n_test=1)
    source = open_source(root)
    assert source.format == "nnunet" and not source.spacing_known
    kinds = sorted((r.patient_id, r.kind) for r in source.refs)
    assert kinds == [("case_001", "labelled"), ("case_002", "labelled"), ("test_001", "unlabelled")]
    cases = _cases(root)
    (case,) = cases["case_002_0000.png"]
    image, label = slice_pair(802)
    np.testing.assert_array_equal(case.image[0], image)
    np.testing.assert_array_equal(case.label[0], label)
    (test,) = cases["test_001_0000.png"]
    assert test.label is None and test.image.shape == (1, *image.shape)


def test_images_without_masks_are_an_unlabelled_pool(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "pool", n=3, labelled=False)
    source = open_source(root)
    assert source.format == "image2d" and not source.labels.foreground
    assert [r.kind for r in source.refs] == ["unlabelled"] * 3


def test_prepare_caches_one_slice_volumes(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "src", n=4)
    cache = SliceCache.open(prepare_cache(root, tmp_path / "cache").path)
    assert cache.manifest["format"] == "image2d" and len(cache.volumes) == 4
    assert all(v.n_slices == 1 and v.spacing is None and v.labelled for v in cache.volumes)
    split = cache.manifest.split
    assert sorted((*split.train, *split.val, *split.test)) == [f"case{i}" for i in range(1, 5)]


def test_tiff_keeps_float_and_16_bit_values(tmp_path: Path) -> None:
    values = np.linspace(-3.5, 1e4, 24 * 20, dtype=np.float32).reshape(24, 20)
    np.testing.assert_array_equal(read_image2d(save(tmp_path / "f.tif", values)), values)
    wide = (np.arange(24 * 20, dtype=np.uint16) * 130).reshape(24, 20)
    np.testing.assert_array_equal(read_image2d(save(tmp_path / "w.tiff", wide)), wide)


def test_grayscale_saved_as_rgb_is_read_as_one_channel(tmp_path: Path) -> None:
    gray = slice_pair(1)[1] * 60
    rgb = np.repeat(gray[..., None], 3, axis=2)
    np.testing.assert_array_equal(read_image2d(save(tmp_path / "g.png", rgb)), gray)
    mask = read_image2d(
        save(tmp_path / "m.png", np.repeat(slice_pair(1)[1][..., None], 3, 2)), as_mask=True
    )
    np.testing.assert_array_equal(mask, slice_pair(1)[1])


def test_palette_mask_is_read_as_its_indices(tmp_path: Path) -> None:
    label = slice_pair(2)[1]
    im = Image.fromarray(label, mode="P")
    im.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
    im.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_image2d(tmp_path / "p.png", as_mask=True), label)


@pytest.mark.parametrize(
    ("as_mask", "check"), [(False, "rgb-image"), (True, "rgb-mask")], ids=["image", "mask"]
)
def test_colour_is_refused(tmp_path: Path, as_mask: bool, check: str) -> None:
    rgb = np.zeros((24, 20, 3), np.uint8)
    rgb[..., 0] = 1
    path = save(tmp_path / "c.png", rgb)
    with pytest.raises(DataError) as info:
        read_image2d(path, as_mask=as_mask)
    assert info.value.check == check and info.value.path == path


def test_transparency_and_pages_are_refused(tmp_path: Path) -> None:
    rgba = np.full((24, 20, 4), 200, np.uint8)
    rgba[0, 0, 3] = 10
    with pytest.raises(DataError, match=r"\[alpha-channel\]"):
        read_image2d(save(tmp_path / "a.png", rgba))
    pages = [Image.fromarray(slice_pair(i)[0]) for i in range(3)]
    pages[0].save(tmp_path / "stack.tif", save_all=True, append_images=pages[1:])
    with pytest.raises(DataError, match=r"\[multi-page\] holds 3 pages"):
        read_image2d(tmp_path / "stack.tif")


def test_detection_is_unambiguous(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "src")
    assert detect_format(root) == "image2d"
    assert detect_format(make_nnunet_2d(tmp_path / "nn")) == "nnunet"
    loose = tmp_path / "loose"  # PNGs outside images/: no format claims them
    save(loose / "scan.png", slice_pair(3)[0])
    with pytest.raises(DataError, match=r"\[unknown-format\]"):
        detect_format(loose)
    builders.write_pair(root / "vol.nii.gz", None, 1)  # slices and a volume: refuse to guess
    with pytest.raises(DataError, match=r"\[ambiguous-format\]"):
        detect_format(root)
    assert open_source(root, "image2d").format == "image2d"


def test_renamed_labels_rebuild_the_cache(tmp_path: Path) -> None:
    """labels.json is part of what a cache is built from: a renamed label rebuilds it."""
    root = make_image_folder(tmp_path / "src", n=4)
    out = tmp_path / "cache"
    prepare_cache(root, out)
    assert not prepare_cache(root, out).built
    renamed = {("bg" if name == "background" else name): v for name, v in LABELS.items()}
    (root / "labels.json").write_text(json.dumps(renamed))
    res = prepare_cache(root, out)
    assert res.built and res.reason == "source file contents changed"
    assert SliceCache.open(out).label_names[0] == "bg"


def test_masks_need_labels_json(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "src")
    (root / "labels.json").unlink()
    with pytest.raises(DataError, match=r"labels\.json: \[labels-json\] missing"):
        open_source(root)
    (root / "labels.json").write_text(json.dumps({"labels": {"0": "background", "1": "scar"}}))
    assert dict(open_source(root).labels.names) == {0: "background", 1: "scar"}


def test_converts_to_nnunet_and_reads_back(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "src", n=2)
    result = convert_source(root, tmp_path / "nn")
    assert (result.labelled, result.unlabelled) == (2, 0)
    back = _cases(tmp_path / "nn")
    for i in (1, 2):
        (case,) = back[f"case{i}_0000.nii.gz"]
        image, label = slice_pair(700 + i)
        np.testing.assert_array_equal(case.image[0], image)
        np.testing.assert_array_equal(case.label[0], label)
