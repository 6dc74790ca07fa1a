"""Evaluation of a run and prediction of new volumes in their own format."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np

from medssl.artifacts.labels import ACDC_LABELS
from medssl.cli import main
from medssl.evaluation.evaluate import evaluate
from medssl.evaluation.predict import output_name, predict
from tests import builders


def test_evaluate_writes_metrics_per_case_and_overlays(tiny_finetuned: Path) -> None:
    metrics = evaluate(tiny_finetuned)
    saved = json.loads((tiny_finetuned / "metrics.json").read_text())
    assert saved["volumes"] == metrics["volumes"] == 2  # patient001 ED + ES
    assert set(saved["slice_iou"]) == {"RV", "MYO", "LV", "mean"}
    assert saved["distance_units"] == "mm"
    assert set(saved["by_phase"]) == {"ED", "ES"}
    assert 0 <= saved["dice_3d"]["mean"] <= 1 and 0 <= saved["jaccard_loss"] <= 1
    with (tiny_finetuned / "per_case.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {r["phase"] for r in rows} == {"ED", "ES"}
    assert all(r["patient"] == "patient001" for r in rows)
    assert "LV_EF_abs_error" in (tiny_finetuned / "clinical.csv").read_text()
    assert len(list((tiny_finetuned / "overlays").glob("*.png"))) == 2
    clin = saved["clinical_mean_abs_error"]
    assert all(not math.isnan(v) for v in clin.values())


def test_nifti_prediction_keeps_shape_affine_header(tiny_finetuned: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    img_path = src / "case_0000.nii.gz"
    image, _ = builders.make_volume(3, shape=(5, 30, 26))
    affine = np.array([[0, -1.3, 0, 10], [1.2, 0, 0, -4], [0, 0, 8.0, 2], [0, 0, 0, 1]])
    nii = nib.Nifti1Image(np.transpose(image, (2, 1, 0)).astype(np.int16), affine)
    nii.header["descrip"] = b"medssl round trip"
    nib.save(nii, img_path)
    (out,) = predict(tiny_finetuned, img_path, tmp_path / "out")
    assert out.name == "case.nii.gz" and output_name(img_path) == "case"
    seg = nib.load(out)
    assert seg.shape == nii.shape
    np.testing.assert_allclose(seg.affine, nii.affine)
    assert seg.header["descrip"] == nii.header["descrip"]
    assert np.array_equal(seg.header.get_zooms(), nib.load(img_path).header.get_zooms())
    assert seg.get_data_dtype() == np.uint8
    assert set(np.unique(np.asanyarray(seg.dataobj))) <= {0, 1, 2, 3}
    assert (tmp_path / "out" / "overlays" / "case.png").exists()


def test_h5_in_h5_out(tiny_finetuned: Path, tmp_path: Path) -> None:
    src = builders.make_h5(tmp_path / "h5", n_patients=1)
    files = predict(tiny_finetuned, src, tmp_path / "out", overlays=False)
    assert sorted(f.name for f in files) == ["patient001_frame01.h5", "patient001_frame12.h5"]
    with h5py.File(files[0]) as fh, h5py.File(src / files[0].name) as ref:
        assert fh["prediction"].shape == ref["image"].shape
        assert np.array_equal(fh["label"][()], ref["label"][()])


def test_cli_predict_and_evaluate(tiny_finetuned: Path, tmp_path: Path, capsys) -> None:
    src = builders.make_acdc(tmp_path / "acdc", n_patients=1, series=False)
    pdir = src / "training" / "patient001"
    assert (
        main(
            [
                "predict",
                "--model",
                str(tiny_finetuned),
                "--input",
                str(pdir),
                "--out",
                str(tmp_path / "pred"),
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "pred").glob("*.nii.gz")) == [
        "patient001_frame01.nii.gz",
        "patient001_frame03.nii.gz",
    ]
    assert main(["evaluate", str(tiny_finetuned)]) == 0
    assert "3D Dice" in capsys.readouterr().out


def test_dicom_in_dicom_seg_out(tiny_finetuned: Path, tmp_path: Path) -> None:
    """DICOM cine in, one DICOM-SEG instance per phase out: read back with highdicom, the
    labels of every source image equal the prediction on the phantom's NIfTI cine."""
    import highdicom as hd
    import pydicom

    from medssl.data.nifti import to_slices
    from medssl.data.readers import open_source
    from tests.data.dicom_builders import phantom_dicom

    nifti, dicom = phantom_dicom(tmp_path / "src", patients=(1,), n_frames=2)
    cine = nifti / "training" / "patient001" / "patient001_4d.nii.gz"
    (nii_out,) = predict(tiny_finetuned, cine, tmp_path / "nii", overlays=False)
    expected = np.asanyarray(nib.load(nii_out).dataobj)
    files = predict(tiny_finetuned, dicom, tmp_path / "seg")
    assert [f.name for f in files] == [
        "patient001_series100_frame01.seg.dcm",
        "patient001_series100_frame02.seg.dcm",
    ]
    assert (tmp_path / "seg" / "overlays" / "patient001_series100.png").exists()
    (stack,) = open_source(dicom).refs
    segs = [hd.seg.segread(f) for f in files]
    assert len({s.SeriesInstanceUID for s in segs}) == 1
    assert [int(s.InstanceNumber) for s in segs] == [1, 2]
    for t, (seg, case) in enumerate(zip(segs, stack.load(), strict=True)):
        sources = [pydicom.dcmread(p, stop_before_pixels=True) for p in case.sources]
        assert seg.PatientID == "patient001"
        assert seg.StudyInstanceUID == sources[0].StudyInstanceUID
        assert seg.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
        assert [seg.get_segment_description(n).segment_label for n in (1, 2, 3)] == [
            "RV",
            "MYO",
            "LV",
        ]
        labels = seg.get_pixels_by_source_instance(
            [ds.SOPInstanceUID for ds in sources], combine_segments=True
        )
        np.testing.assert_array_equal(labels, to_slices(expected[..., t]))
    for f in files:  # the SEGs beside the series: read back as its labelled phases
        shutil.copy(f, dicom / "patient001" / f.name)
    source = open_source(dicom)
    assert source.labels == ACDC_LABELS
    labelled = {r.frame: next(iter(r.load())) for r in source.refs if r.kind == "labelled"}
    for t in (0, 1):
        np.testing.assert_array_equal(labelled[t + 1].label, to_slices(expected[..., t]))
    one_file = predict(tiny_finetuned, stack.files[0], tmp_path / "one", overlays=False)
    assert [f.name for f in one_file] == [f.name for f in files]  # the stack holding it


def test_enhanced_dicom_in_dicom_seg_out(tiny_finetuned: Path, tmp_path: Path) -> None:
    """An enhanced multi-frame cine in, one DICOM-SEG per phase out, each frame
    referencing its source frame: read back by source frame with highdicom, the masks
    equal the prediction on the phantom's NIfTI cine."""
    import highdicom as hd
    import pydicom

    from medssl.data.nifti import to_slices
    from medssl.data.readers.dicom import list_stacks
    from tests.data.dicom_builders import phantom_dicom, write_enhanced_dicom

    nifti, _ = phantom_dicom(tmp_path / "src", patients=(1,), n_frames=2)
    cine_path = nifti / "training" / "patient001" / "patient001_4d.nii.gz"
    cine = nib.load(cine_path)
    path = write_enhanced_dicom(
        tmp_path / "enh" / "cine.dcm", np.asanyarray(cine.dataobj), cine.affine, "patient001"
    )
    (nii_out,) = predict(tiny_finetuned, cine_path, tmp_path / "nii", overlays=False)
    expected = np.asanyarray(nib.load(nii_out).dataobj)
    files = predict(tiny_finetuned, tmp_path / "enh", tmp_path / "seg", overlays=False)
    assert [f.name for f in files] == [
        "patient001_series200_frame01.seg.dcm",
        "patient001_series200_frame02.seg.dcm",
    ]
    (plan,), _ = list_stacks(tmp_path / "enh")
    uid = pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID
    for t, f in enumerate(files):
        seg = hd.seg.segread(f)
        numbers = [im.frame + 1 for im in plan.grid[t]]
        labels = seg.get_pixels_by_source_frame(
            uid, numbers, combine_segments=True, assert_missing_frames_are_empty=True
        )
        np.testing.assert_array_equal(labels, to_slices(expected[..., t]))
