"""Preprocessing cache: round trip, staleness detection, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from medssl.data.cache_read import SliceCache
from medssl.data.cache_write import cache_is_current, prepare_cache
from medssl.data.preprocess import PrepareConfig, normalize_volume
from medssl.data.readers import open_source
from medssl.errors import DataError
from tests import builders


def test_round_trip_equals_normalised_source(acdc_source: Path, tmp_path: Path) -> None:
    cfg = PrepareConfig(dtype="float32")
    res = prepare_cache(acdc_source, tmp_path / "c", cfg)
    assert res.built
    cache = SliceCache.open(res.path)
    cases = [c for r in open_source(acdc_source).refs for c in r.load()]
    assert len(cache.volumes) == len(cases)
    assert len(cache) == sum(c.n_slices for c in cases)
    for vol, case in zip(cache.volumes, cases, strict=True):
        expected, stats = normalize_volume(case.image, cfg.norm, cfg.clip_percentiles)
        rows = list(cache.volume_slices(cache.volumes.index(vol)))
        got = np.stack([cache.image(i) for i in rows])
        np.testing.assert_array_equal(got, expected)
        assert vol.patient == case.patient_id and vol.frame == case.frame
        assert vol.spacing == case.spacing and vol.shape == case.image.shape
        assert vol.norm["low"] == pytest.approx(stats.low)
        if case.label is not None:
            np.testing.assert_array_equal(np.stack([cache.label(i) for i in rows]), case.label)
        else:
            assert all(cache.label(i) is None for i in rows)
    assert cache.verify() == []
    assert cache.manifest["stats"]["labelled_slices"] == 24
    assert cache.num_classes == 4


def test_float16_storage_close_to_float32(h5_source: Path, tmp_path: Path) -> None:
    c16 = SliceCache.open(prepare_cache(h5_source, tmp_path / "a").path)
    c32 = SliceCache.open(
        prepare_cache(h5_source, tmp_path / "b", PrepareConfig(dtype="float32")).path
    )
    assert c16.images.dtype == np.float16
    np.testing.assert_allclose(c16.image(3), c32.image(3), atol=1e-2)


def test_variable_slice_sizes_kept_undistorted(tmp_path: Path) -> None:
    root = tmp_path / "h5"
    builders.make_h5(root, n_patients=1)
    import h5py

    image, label = builders.make_volume(7, shape=(3, 40, 28))
    with h5py.File(root / "patient002_frame01.h5", "w") as fh:
        fh["image"], fh["label"] = image, label
    cache = SliceCache.open(prepare_cache(root, tmp_path / "c").path)
    shapes = {cache.slice_shape(i) for i in range(len(cache))}
    assert shapes == {(24, 20), (40, 28)}
    big = next(i for i in range(len(cache)) if cache.slice_shape(i) == (40, 28))
    np.testing.assert_array_equal(cache.label(big), label[cache.index["slice"][big]])


def test_reuse_when_current_and_rebuild_on_content_change(
    acdc_source: Path, tmp_path: Path
) -> None:
    out = tmp_path / "c"
    prepare_cache(acdc_source, out)
    assert not prepare_cache(acdc_source, out).built
    gt = acdc_source / "training" / "patient002" / "patient002_frame01_gt.nii.gz"
    _image, label = builders.make_volume(5)
    label[0, 0, 0] = 3
    from medssl.data.nifti import from_slices, write_nifti

    write_nifti(gt, from_slices(label), builders.affine_for(), dtype=np.uint8)
    assert (
        cache_is_current(out, acdc_source, PrepareConfig(), None) == "source file contents changed"
    )
    res = prepare_cache(acdc_source, out)
    assert res.built and res.reason == "source file contents changed"


def test_touch_without_change_keeps_cache(acdc_source: Path, tmp_path: Path) -> None:
    out = tmp_path / "c"
    prepare_cache(acdc_source, out)
    f = acdc_source / "training" / "patient001" / "Info.cfg"
    os.utime(f, ns=(1, 1))
    assert not prepare_cache(acdc_source, out).built


def test_rebuild_on_added_file_and_config_change(h5_source: Path, tmp_path: Path) -> None:
    out = tmp_path / "c"
    prepare_cache(h5_source, out)
    assert (
        prepare_cache(h5_source, out, PrepareConfig(norm="minmax")).reason
        == "preprocessing config changed"
    )
    builders.make_h5(tmp_path / "more", n_patients=4)
    (tmp_path / "more" / "patient004_frame01.h5").rename(h5_source / "patient004_frame01.h5")
    res = prepare_cache(h5_source, out, PrepareConfig(norm="minmax"))
    assert res.reason == "source files added or removed"
    assert len(SliceCache.open(out).volumes) == 7


def test_truncated_cache_detected_and_rebuilt(h5_source: Path, tmp_path: Path) -> None:
    out = tmp_path / "c"
    prepare_cache(h5_source, out)
    data = (out / "images.bin").read_bytes()
    (out / "images.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated-cache"):
        SliceCache.open(out)
    res = prepare_cache(h5_source, out)
    assert res.built and "truncated-cache" in res.reason
    assert SliceCache.open(out).verify() == []


def test_corrupted_bytes_found_by_verify(h5_source: Path, tmp_path: Path) -> None:
    out = prepare_cache(h5_source, tmp_path / "c").path
    raw = bytearray((out / "labels.bin").read_bytes())
    raw[10] ^= 0xFF
    (out / "labels.bin").write_bytes(bytes(raw))
    assert SliceCache.open(out).verify() == ["labels"]


def test_no_temporary_folders_left(h5_source: Path, tmp_path: Path) -> None:
    prepare_cache(h5_source, tmp_path / "c")
    prepare_cache(h5_source, tmp_path / "c", force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", "h5"]


def test_resample_to_target_spacing(acdc_source: Path, tmp_path: Path) -> None:
    cfg = PrepareConfig(target_spacing=2.5, include_series=False)
    cache = SliceCache.open(prepare_cache(acdc_source, tmp_path / "c", cfg).path)
    vol = cache.volumes[0]
    assert vol.stored_shape == (4, round(24 * 1.5 / 2.5), round(20 * 1.25 / 2.5))
    assert vol.spacing == pytest.approx((10.0, 2.5, 2.5), rel=0.05)
    assert set(np.unique(cache.label(0))) <= {0, 1, 2, 3}


def test_resample_refused_without_spacing(h5_source: Path, tmp_path: Path) -> None:
    from medssl.errors import DataErrors

    with pytest.raises(DataErrors, match="spacing-unknown"):
        prepare_cache(h5_source, tmp_path / "c", PrepareConfig(target_spacing=1.0))
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("norm", ["zscore", "minmax"])
def test_normalize_volume_properties(norm: str) -> None:
    rng = np.random.default_rng(0)
    vol = rng.gamma(2.0, 100.0, size=(3, 32, 32)).astype(np.float32)
    vol[0, 0, 0] = 1e6  # an outlier the clipping must remove
    out, stats = normalize_volume(vol, norm)
    assert stats.high < 1e5
    if norm == "zscore":
        assert abs(out.mean()) < 1e-4 and abs(out.std() - 1) < 1e-3
    else:
        assert out.min() == 0 and out.max() == pytest.approx(1)
    scaled, _ = normalize_volume(vol * 3 + 7, norm)
    np.testing.assert_allclose(scaled, out, atol=1e-4)


def test_normalize_constant_volume_is_zero() -> None:
    out, _ = normalize_volume(np.full((2, 4, 4), 5.0, np.float32))
    assert not out.any()


def test_run_cache_at_a_target_spacing(
    acdc_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's ``target_spacing`` prepares the source folder at that spacing in a cache of
    its own (native and resampled caches do not rebuild each other); a prepared cache is
    used as it is, unless the run asks for another spacing (one line naming it)."""
    from medssl.data.resolve import resolve_run_cache

    monkeypatch.setenv("MEDSSL_CACHE_DIR", str(tmp_path / "caches"))
    native = resolve_run_cache(acdc_source, None)
    coarse = resolve_run_cache(acdc_source, 2.5)
    assert native.path != coarse.path
    assert native.manifest["config"]["target_spacing"] is None
    assert coarse.manifest["config"]["target_spacing"] == 2.5
    assert coarse.volumes[0].spacing == pytest.approx((10.0, 2.5, 2.5), rel=0.05)
    assert resolve_run_cache(acdc_source, None).path == native.path  # reused, not rebuilt
    assert resolve_run_cache(coarse.path, None).path == coarse.path  # a cache as it is
    assert resolve_run_cache(coarse.path, 2.5).path == coarse.path
    with pytest.raises(DataError, match=r"spacing-mismatch.*2\.5 mm.*asks for 2\.0"):
        resolve_run_cache(coarse.path, 2.0)
