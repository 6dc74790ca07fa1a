"""DICOM-SEG writing: a known label map (the phantom's ED truth) survives the round trip."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest

from medssl.artifacts.labels import ACDC_LABELS, LabelSet
from medssl.data.dicom_stack import LPS_TO_RAS
from medssl.data.nifti import to_slices
from medssl.data.readers import open_source
from medssl.data.readers.dicom import list_stacks
from medssl.evaluation.dicom_seg import segment_numbers, write_dicom_seg, write_dicom_seg_frames
from tests.data.dicom_builders import phantom_dicom, write_enhanced_dicom


@pytest.fixture(scope="module", params=[False, True], ids=["one-series", "series-per-slice"])
def phantom(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """``(ED truth (S, H, W), ED case)`` of a phantom written as DICOM."""
    root = tmp_path_factory.mktemp("seg")
    nifti, dicom = phantom_dicom(root, n_frames=2, series_per_slice=request.param)
    gt = nib.load(nifti / "training" / "patient001" / "patient001_frame01_gt.nii.gz")
    (ref,) = open_source(dicom).refs
    ed = next(iter(ref.load()))
    return to_slices(np.asanyarray(gt.dataobj)), ed


def test_truth_round_trips_with_its_geometry(phantom, tmp_path: Path) -> None:
    truth, case = phantom
    path = write_dicom_seg(tmp_path / "ed.seg.dcm", case.sources, truth, ACDC_LABELS, hd.UID(), 1)
    seg = hd.seg.segread(path)
    assert seg.number_of_segments == 3
    volume = seg.get_volume(combine_segments=True)
    # highdicom: voxel (slice, row, column) in LPS; medssl: (column, row, slice) in RAS
    ours = LPS_TO_RAS @ volume.affine[:, [2, 1, 0, 3]]
    labels = np.asarray(volume.array)
    if ours[:3, 2] @ case.affine[:3, 2] < 0:  # highdicom may stack the other way round
        labels = labels[::-1]
        ours[:3, 3] += ours[:3, 2] * (labels.shape[0] - 1)
        ours[:3, 2] *= -1
    np.testing.assert_allclose(ours, case.affine, atol=1e-4)
    np.testing.assert_array_equal(labels, truth)


def test_references_every_source_image(phantom, tmp_path: Path) -> None:
    truth, case = phantom
    path = write_dicom_seg(tmp_path / "ed.seg.dcm", case.sources, truth, ACDC_LABELS, hd.UID(), 1)
    seg = hd.seg.segread(path)
    uids = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in case.sources}
    referenced = {uid for _study, _series, uid in seg.get_source_image_uids()}
    assert uids <= referenced


def test_empty_prediction_and_label_gaps(phantom, tmp_path: Path) -> None:
    truth, case = phantom
    labels = LabelSet({0: "background", 2: "a", 5: "b"})
    np.testing.assert_array_equal(segment_numbers(labels)[[0, 2, 5, 3]], [0, 1, 2, 0])
    empty = np.zeros_like(truth)
    path = write_dicom_seg(tmp_path / "empty.seg.dcm", case.sources, empty, labels, hd.UID(), 1)
    seg = hd.seg.segread(path)
    assert [seg.get_segment_description(n).segment_label for n in (1, 2)] == ["a", "b"]
    assert not np.asarray(seg.get_volume(combine_segments=True).array).any()


@pytest.fixture(scope="module")
def enhanced(tmp_path_factory: pytest.TempPathFactory):
    """``(truth (T, S, H, W), plan)``: a cine of the phantom as one enhanced multi-frame
    file (frames shuffled, no patient name or study date: an anonymised export)."""
    root = tmp_path_factory.mktemp("enhanced")
    nifti, _ = phantom_dicom(root, n_frames=2)
    cine = nib.load(nifti / "training" / "patient001" / "patient001_4d.nii.gz")
    write_enhanced_dicom(
        root / "enh" / "cine.dcm", np.asanyarray(cine.dataobj), cine.affine, "patient001"
    )
    (plan,), problems = list_stacks(root / "enh")
    assert not problems
    gts = [
        nib.load(nifti / "training" / "patient001" / f"patient001_frame{f:02d}_gt.nii.gz")
        for f in (1, 2)
    ]
    truth = np.stack([to_slices(np.asanyarray(g.dataobj)) for g in gts])
    return truth, plan


@pytest.mark.parametrize("phase", [0, 1])
def test_enhanced_source_round_trip_on_its_frames(enhanced, phase: int, tmp_path: Path) -> None:
    """A SEG of one phase of an enhanced cine: every SEG frame references exactly its
    source frame (that phase's, never another phase's at the same position), and the
    mask read back on those frames is the one written."""
    truth, plan = enhanced
    frames = plan.grid[phase]
    label = truth[phase]
    path = write_dicom_seg_frames(tmp_path / "p.seg.dcm", frames, label, ACDC_LABELS, hd.UID(), 1)
    uid = pydicom.dcmread(frames[0].path, stop_before_pixels=True).SOPInstanceUID
    numbers = [im.frame + 1 for im in frames]
    other = {im.frame + 1 for t, ph in enumerate(plan.grid) if t != phase for im in ph}
    raw = pydicom.dcmread(path)
    referenced = []
    for item in raw.PerFrameFunctionalGroupsSequence:
        (derivation,) = item.DerivationImageSequence
        (source,) = derivation.SourceImageSequence
        assert source.ReferencedSOPInstanceUID == uid
        referenced.append(int(source.ReferencedFrameNumber))
    assert set(referenced) <= set(numbers) and not set(referenced) & other
    seg = hd.seg.segread(path)
    assert {u for _study, _series, u in seg.get_source_image_uids()} == {uid}
    back = seg.get_pixels_by_source_frame(
        uid, numbers, combine_segments=True, assert_missing_frames_are_empty=True
    )
    np.testing.assert_array_equal(back, segment_numbers(ACDC_LABELS)[label])
    np.testing.assert_array_equal(back, label)  # ACDC values are 1, 2, 3 already


def test_enhanced_file_per_slice_round_trip(enhanced, tmp_path: Path) -> None:
    """An enhanced cine exported as one file per slice position (merged into one stack):
    each SEG frame references its frame in its own file."""
    from pydicom.uid import generate_uid

    truth, _ = enhanced
    n_z = truth.shape[1]
    data = np.transpose(truth, (3, 2, 1, 0)).astype(np.int16) * 100  # (X, Y, Z, T)
    affine = np.diag([1.5, 1.4, 8.0, 1.0])
    shared = {"StudyInstanceUID": generate_uid(), "FrameOfReferenceUID": generate_uid()}
    for k in range(n_z):
        shift = np.eye(4)
        shift[2, 3] = k
        write_enhanced_dicom(
            tmp_path / "enh" / f"slice{k}.dcm",
            data[:, :, k : k + 1],
            affine @ shift,
            "p2",
            tags=shared,
        )
    (plan,), problems = list_stacks(tmp_path / "enh")
    assert not problems and len(plan.files) == n_z and plan.n_phases == 2
    frames = plan.grid[1]
    path = write_dicom_seg_frames(tmp_path / "s.seg.dcm", frames, truth[1], ACDC_LABELS, "1.2.3", 2)
    seg = hd.seg.segread(path)
    for k, im in enumerate(frames):
        uid = pydicom.dcmread(im.path, stop_before_pixels=True).SOPInstanceUID
        back = seg.get_pixels_by_source_frame(
            uid, [im.frame + 1], combine_segments=True, assert_missing_frames_are_empty=True
        )
        np.testing.assert_array_equal(back[0], truth[1][k])
