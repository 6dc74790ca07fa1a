"""Synthetic cine-MRI phantom: ACDC layout, determinism, anatomy and physics properties."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medssl.data.nifti import to_slices
from medssl.data.phantom import (
    GROUPS,
    MYOCARDIUM_DENSITY_G_PER_ML,
    PhantomTruth,
    generate_phantom,
    read_phantom_truth,
    sample_acquisition,
    sample_appearance,
    sample_body,
    sample_heart,
)
from medssl.data.phantom.body import render_body
from medssl.data.phantom.geometry import ellipse_distance
from medssl.data.phantom.heart import angular_profile, contraction_curve, lv_radii
from medssl.data.phantom.imaging import rician_int16
from medssl.data.phantom.rv import heart_labels, heart_radii, rv_area_mm2

N_PATIENTS = 10
N_FRAMES = 4
INFO_KEYS = ["ED", "ES", "Group", "Height", "NbFrame", "Weight"]


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[PhantomTruth]]:
    root = tmp_path_factory.mktemp("phantom")
    return root, generate_phantom(root, N_PATIENTS, seed=3, n_frames=N_FRAMES)


def read_info(folder: Path) -> dict[str, str]:
    lines = (folder / "Info.cfg").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines)


def load(path: Path) -> nib.Nifti1Image:
    return nib.load(path)


def frame_arrays(root: Path, truth: PhantomTruth, frame: int) -> tuple[np.ndarray, np.ndarray]:
    """``(Z, Y, X)`` image and label of one labelled frame."""
    stem = root / "training" / truth.patient_id / f"{truth.patient_id}_frame{frame:02d}"
    image = to_slices(np.asanyarray(load(Path(f"{stem}.nii.gz")).dataobj))
    label = to_slices(np.asanyarray(load(Path(f"{stem}_gt.nii.gz")).dataobj))
    return image, label


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def heart_slices(label: np.ndarray, value: int) -> np.ndarray:
    """Indices of the slices where ``value`` is present."""
    return np.flatnonzero((label == value).reshape(label.shape[0], -1).any(axis=1))


# --- layout ---------------------------------------------------------------------------


def test_layout_follows_acdc(phantom):
    root, truths = phantom
    folders = sorted(p.name for p in (root / "training").iterdir())
    assert folders == [f"patient{i:03d}" for i in range(1, N_PATIENTS + 1)]
    for truth in truths:
        folder = root / "training" / truth.patient_id
        lines = (folder / "Info.cfg").read_text().splitlines()
        assert [line.split(":")[0] for line in lines] == INFO_KEYS
        info = read_info(folder)
        ed, es, n_frames = int(info["ED"]), int(info["ES"]), int(info["NbFrame"])
        assert n_frames == N_FRAMES
        assert ed == 1 and 1 <= es <= n_frames and es != ed
        assert info["Group"] == truth.group and info["Group"] in GROUPS
        assert 100.0 < float(info["Height"]) < 220.0 and 30.0 < float(info["Weight"]) < 200.0
        names = {p.name for p in folder.iterdir()}
        pid = truth.patient_id
        assert names == {
            "Info.cfg",
            f"{pid}_4d.nii.gz",
            f"{pid}_frame{ed:02d}.nii.gz",
            f"{pid}_frame{ed:02d}_gt.nii.gz",
            f"{pid}_frame{es:02d}.nii.gz",
            f"{pid}_frame{es:02d}_gt.nii.gz",
        }
        assert (truth.ed_frame, truth.es_frame) == (ed, es)


def test_groups_are_round_robin(phantom):
    _, truths = phantom
    assert [t.group for t in truths] == [GROUPS[i % len(GROUPS)] for i in range(N_PATIENTS)]


def test_4d_series_and_labelled_frames_agree(phantom):
    root, truths = phantom
    for truth in truths:
        folder = root / "training" / truth.patient_id
        cine = load(folder / f"{truth.patient_id}_4d.nii.gz")
        data = np.asanyarray(cine.dataobj)
        assert data.dtype == np.int16 and data.shape == truth.shape
        assert data.shape[3] == N_FRAMES and 6 <= data.shape[2] <= 11
        assert 128 <= data.shape[0] <= 256 and 200 <= data.shape[1] <= 256
        zooms = cine.header.get_zooms()
        assert len(zooms) == 4 and zooms[3] > 0
        assert tuple(float(v) for v in zooms[:3]) == truth.zooms_mm
        assert 1.25 <= zooms[0] <= 1.8 and 5.0 <= zooms[2] <= 10.0
        assert data.min() >= 0 and 300 < data.max() < 32767
        for frame in (truth.ed_frame, truth.es_frame):
            stem = folder / f"{truth.patient_id}_frame{frame:02d}"
            image, label = load(Path(f"{stem}.nii.gz")), load(Path(f"{stem}_gt.nii.gz"))
            np.testing.assert_array_equal(np.asanyarray(image.dataobj), data[..., frame - 1])
            label_data = np.asanyarray(label.dataobj)
            assert label_data.dtype == np.uint8 and label_data.shape == data.shape[:3]
            assert set(np.unique(label_data)) <= {0, 1, 2, 3}
            np.testing.assert_allclose(image.affine, cine.affine)
            np.testing.assert_allclose(label.affine, cine.affine)
            np.testing.assert_allclose(label.header.get_zooms(), zooms[:3], rtol=1e-6)


# --- anatomy --------------------------------------------------------------------------


def test_all_classes_on_mid_slices_at_ed(phantom):
    root, truths = phantom
    for truth in truths:
        _, label = frame_arrays(root, truth, truth.ed_frame)
        lv = heart_slices(label, 3)
        for k in lv[len(lv) // 3 : 2 * len(lv) // 3 + 1]:
            assert set(np.unique(label[k])) == {0, 1, 2, 3}, (truth.patient_id, k)


def test_rv_and_lv_shrink_towards_apex(phantom):
    root, truths = phantom
    for truth in truths:
        _, label = frame_arrays(root, truth, truth.ed_frame)
        area = {v: (label == v).sum(axis=(1, 2)) for v in (1, 3)}
        heart = heart_slices(label, 2)
        base, apex = heart[0], heart[-1]
        assert area[1][apex] < 0.2 * area[1][base], truth.patient_id
        lv = area[3][heart[0] : heart[-1] + 1]
        assert lv[0] > 0 and lv[-1] < 0.5 * lv[0]
        assert np.all(np.diff(lv) <= 0.05 * lv[0]), (truth.patient_id, lv)


def test_systole_contracts_and_thickens_the_wall(phantom):
    root, truths = phantom
    for truth in truths:
        _, ed = frame_arrays(root, truth, truth.ed_frame)
        _, es = frame_arrays(root, truth, truth.es_frame)
        assert truth.lv_esv_ml < truth.lv_edv_ml and truth.rv_esv_ml < truth.rv_edv_ml
        myo_ratio = (es == 2).sum() / (ed == 2).sum()
        assert 0.8 < myo_ratio < 1.25, (truth.patient_id, myo_ratio)
        thicker = []
        for k in heart_slices(ed, 3)[1:-1]:
            cavity = [(lab[k] == 3).sum() for lab in (ed, es)]
            outer = [(lab[k] >= 2).sum() for lab in (ed, es)]
            thickness = [
                math.sqrt(o / math.pi) - math.sqrt(c / math.pi)
                for o, c in zip(outer, cavity, strict=True)
            ]
            thicker.append(thickness[1] > thickness[0])
        assert np.mean(thicker) > 0.8, truth.patient_id


def test_intensities_look_like_bssfp(phantom):
    root, truths = phantom
    for truth in truths:
        image, label = frame_arrays(root, truth, truth.ed_frame)
        blood, rv, myo = (image[label == v].mean() for v in (3, 1, 2))
        assert blood > 1.8 * myo and rv > 1.8 * myo, truth.patient_id
        assert np.percentile(image, 2) < 0.3 * myo  # air and lungs


def test_lungs_are_darker_than_tissue():
    design = sample_heart("NOR", np.random.default_rng(0))
    acq = sample_acquisition(design, np.random.default_rng(1))
    rng = np.random.default_rng(2)
    look, body = sample_appearance(rng), sample_body(acq, rng)
    x = (np.arange(acq.cols) - (acq.cols - 1) / 2) * acq.pixel_mm[1]
    y = (np.arange(acq.rows) - (acq.rows - 1) / 2) * acq.pixel_mm[0]
    background = render_body(x, y, np.array([0.3]), body, look, np.random.default_rng(3))
    cos, sin = math.cos(body.angle), math.sin(body.angle)
    dx, dy = x[None, :] - body.centre[0], y[:, None] - body.centre[1]
    p, q = cos * dx + sin * dy, -sin * dx + cos * dy
    lung = next(o for o in body.organs if o.kind == "lung")
    centre = (lung.centre[0] + 0.3 * lung.shift[0], lung.centre[1] + 0.3 * lung.shift[1])
    core = ellipse_distance(p - centre[0], q - centre[1], lung.axes, lung.angle) < -25.0
    assert core.sum() > 100
    outer, inner = background.outer[0], background.inner[0]
    assert outer[core].mean() < 0.3 * inner[core].mean()
    assert outer[core].mean() < 0.5 * look.tissue


def test_infarct_thins_the_wall_and_does_not_contract():
    design = sample_heart("MINF", np.random.default_rng(5))
    inf = design.infarct
    assert inf is not None
    directions = np.array([inf.angle, inf.angle + math.pi])
    angles = angular_profile(design, directions)
    z = np.array([[[0.85 * design.long_axis_mm]]])
    endo_ed, epi_ed = lv_radii(design, angles, z, 0.0)
    endo_es, epi_es = lv_radii(design, angles, z, 1.0)
    wall_ed, wall_es = (epi_ed - endo_ed).ravel(), (epi_es - endo_es).ravel()
    assert wall_ed[0] < 0.7 * wall_ed[1]
    assert abs(wall_es[0] - wall_ed[0]) < 0.1 * wall_ed[0] < wall_es[1] - wall_ed[1]


# --- truth ----------------------------------------------------------------------------


def test_truth_json_equals_label_counts(phantom):
    root, truths = phantom
    assert read_phantom_truth(root) == truths
    payload = json.loads((root / "phantom_truth.json").read_text())
    assert sorted(payload["patients"]) == [t.patient_id for t in truths]
    for truth in truths:
        entry = payload["patients"][truth.patient_id]
        _, ed = frame_arrays(root, truth, truth.ed_frame)
        _, es = frame_arrays(root, truth, truth.es_frame)
        voxel_ml = float(np.prod(entry["zooms_mm"])) / 1000.0
        assert entry["lv_edv_ml"] == pytest.approx((ed == 3).sum() * voxel_ml, rel=1e-12)
        assert entry["lv_esv_ml"] == pytest.approx((es == 3).sum() * voxel_ml, rel=1e-12)
        assert entry["rv_edv_ml"] == pytest.approx((ed == 1).sum() * voxel_ml, rel=1e-12)
        assert entry["rv_esv_ml"] == pytest.approx((es == 1).sum() * voxel_ml, rel=1e-12)
        mass = (ed == 2).sum() * voxel_ml * MYOCARDIUM_DENSITY_G_PER_ML
        assert entry["lv_mass_g"] == pytest.approx(mass, rel=1e-12)
        lv_ef = 100 * (entry["lv_edv_ml"] - entry["lv_esv_ml"]) / entry["lv_edv_ml"]
        assert entry["lv_ef"] == pytest.approx(lv_ef)
        assert entry["group"] == truth.group and set(entry["design"]) >= {"lv_edv_ml", "lv_ef"}


def test_label_volumes_follow_the_design(phantom):
    _, truths = phantom
    for truth in truths:
        assert truth.lv_edv_ml == pytest.approx(truth.design["lv_edv_ml"], rel=0.15)
        assert truth.rv_edv_ml == pytest.approx(truth.design["rv_edv_ml"], rel=0.15)
        if truth.group != "MINF":
            assert truth.lv_ef == pytest.approx(truth.design["lv_ef"], abs=8.0)


def test_group_trends(phantom):
    _, truths = phantom

    def mean(group: str, field: str) -> float:
        return float(np.mean([getattr(t, field) for t in truths if t.group == group]))

    assert mean("DCM", "lv_edv_ml") > 1.15 * mean("NOR", "lv_edv_ml")
    assert mean("HCM", "lv_mass_g") > 1.5 * mean("NOR", "lv_mass_g")
    assert mean("RV", "rv_edv_ml") > 1.15 * mean("NOR", "rv_edv_ml")
    assert mean("DCM", "lv_ef") < 40 < mean("NOR", "lv_ef")
    assert mean("MINF", "lv_ef") < 40 < mean("NOR", "lv_ef")
    assert mean("HCM", "lv_ef") > mean("NOR", "lv_ef")
    assert mean("RV", "rv_ef") < 40 < mean("NOR", "rv_ef")
    for t in truths:
        if t.group in ("DCM", "MINF"):
            assert t.lv_ef < 45
        if t.group == "RV":
            assert t.rv_edv_ml > max(u.rv_edv_ml for u in truths if u.group == "NOR")
        if t.group == "HCM":
            assert t.lv_mass_g > 1.2 * mean("NOR", "lv_mass_g")


# --- determinism ----------------------------------------------------------------------


def test_same_seed_gives_identical_bytes(tmp_path):
    first = generate_phantom(tmp_path / "a", 2, seed=11, n_frames=3, workers=1)
    generate_phantom(tmp_path / "b", 2, seed=11, n_frames=3, workers=2)
    hashes = tree_hashes(tmp_path / "a")
    assert len(hashes) == 2 * 6 + 1
    assert hashes == tree_hashes(tmp_path / "b")
    generate_phantom(tmp_path / "c", 1, seed=11, n_frames=3)
    single = tree_hashes(tmp_path / "c")
    assert all(hashes[name] == digest for name, digest in single.items() if "patient" in name)
    other = generate_phantom(tmp_path / "d", 2, seed=12, n_frames=3)
    different = tree_hashes(tmp_path / "d")
    cine = "training/patient001/patient001_4d.nii.gz"
    assert different[cine] != hashes[cine]
    assert other != first


# --- pure functions and arguments ----------------------------------------------------


def test_contraction_curve_peaks_at_end_systole():
    curve = contraction_curve(15, 6)
    assert curve[0] == 0.0 and curve[6] == pytest.approx(1.0)
    assert np.all((curve >= 0) & (curve <= 1))
    assert np.all(np.diff(curve[:7]) > 0) and np.all(np.diff(curve[6:]) < 0)


def test_rician_noise_statistics():
    rng = np.random.default_rng(0)
    background = rician_int16(np.zeros(200_000, np.float32), 100.0, rng).astype(float)
    assert background.mean() == pytest.approx(100.0 * math.sqrt(math.pi / 2), rel=0.02)
    bright = rician_int16(np.full(200_000, 2000.0, np.float32), 100.0, rng).astype(float)
    assert bright.mean() == pytest.approx(2000.0, rel=0.01)
    assert bright.std() == pytest.approx(100.0, rel=0.03)


def test_rv_ellipse_meets_its_target_area():
    design = sample_heart("RV", np.random.default_rng(4))
    z = np.array([5.0, 30.0, 55.0]).reshape(-1, 1, 1)
    width = 0.2
    grid = (np.arange(-600, 600) + 0.5) * width
    dx, dy = grid[None, None, :], grid[None, :, None]
    angles = angular_profile(design, np.arctan2(dy, dx))
    radii = heart_radii(design, angles, (dx, dy), z, 0.4)
    label = heart_labels(radii, np.hypot(dx, dy))
    area = (label == 1).sum(axis=(1, 2)) * width**2
    target = rv_area_mm2(design, z, 0.4).ravel()
    np.testing.assert_allclose(area, target, rtol=0.02)


@pytest.mark.parametrize("kwargs", [{"patients": 0}, {"n_frames": 1}, {"workers": 0}])
def test_bad_arguments_are_refused(tmp_path, kwargs):
    with pytest.raises(ValueError):
        generate_phantom(tmp_path, **{"patients": 1, **kwargs})


def test_heart_labels_write_the_values_of_the_label_set_roles():
    from medssl.artifacts.labels import LabelSet

    design = sample_heart("NOR", np.random.default_rng(1))
    z = np.array([30.0]).reshape(-1, 1, 1)
    grid = (np.arange(-100, 100) + 0.5) * 0.8
    dx, dy = grid[None, None, :], grid[None, :, None]
    radii = heart_radii(design, angular_profile(design, np.arctan2(dy, dx)), (dx, dy), z, 0.4)
    acdc = heart_labels(radii, np.hypot(dx, dy))
    other = LabelSet(
        {0: "bg", 4: "LVc", 7: "LVm", 9: "RVc"},
        {"lv_cavity": 4, "lv_myocardium": 7, "rv_cavity": 9},
    )
    relabelled = heart_labels(radii, np.hypot(dx, dy), other)
    assert set(np.unique(acdc)) == {0, 1, 2, 3}
    np.testing.assert_array_equal(relabelled, np.array([0, 9, 7, 4], np.uint8)[acdc])
    with pytest.raises(ValueError, match="cardiac label set"):
        heart_labels(radii, np.hypot(dx, dy), LabelSet({0: "bg", 1: "Anterior"}))
