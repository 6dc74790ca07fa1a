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
from medssl.evaluation.dicom_seg import segment_numbers, write_dicom_seg
from tests.data.dicom_builders import phantom_dicom


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
