"""Each reader presents its layout through the one case interface."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medssl.data.case import Phase
from medssl.data.nifti import from_slices, to_slices
from medssl.data.readers import detect_format, open_source
from medssl.errors import DataError
from tests import builders


def _cases(root: Path, fmt: str | None = None):
    return [c for ref in open_source(root, fmt).refs for c in ref.load()]


def test_axis_conversion_roundtrip() -> None:
    arr = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    assert to_slices(arr).shape == (4, 3, 2)
    np.testing.assert_array_equal(from_slices(to_slices(arr)), arr)


@pytest.mark.parametrize(
    ("fixture", "fmt"),
    [
        ("acdc_source", "acdc"),
        ("h5_source", "h5"),
        ("nnunet_source", "nnunet"),
        ("nifti_folder", "nifti-folder"),
    ],
)
def test_detect_format(request: pytest.FixtureRequest, fixture: str, fmt: str) -> None:
    assert detect_format(request.getfixturevalue(fixture)) == fmt


def test_detect_format_unknown(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="unknown-format"):
        detect_format(tmp_path)


def test_acdc_reader_orientation_spacing_and_meta(acdc_source: Path) -> None:
    cases = _cases(acdc_source)
    labelled = [c for c in cases if c.labelled]
    series = [c for c in cases if not c.labelled]
    assert len(labelled) == 6 and len(series) == 15
    ed = next(c for c in labelled if c.patient_id == "patient001" and c.phase == Phase.ED)
    image, label = builders.make_volume(100 + 1)
    assert ed.image.shape == builders.SHAPE and ed.image.dtype == np.float32
    np.testing.assert_array_equal(ed.label, label)
    np.testing.assert_array_equal(ed.image, image.astype(np.int16))
    assert ed.spacing == builders.SPACING
    assert ed.meta.group == "NOR" and ed.meta.n_frames == 5 and ed.frame == 1
    frames = sorted(c.frame for c in series if c.patient_id == "patient002")
    assert frames == [1, 2, 3, 4, 5]
    assert {c.phase for c in series if c.frame == 3} == {Phase.ES}


def test_acdc_reader_4d_frames_match_source(acdc_source: Path) -> None:
    pdir = acdc_source / "training" / "patient003"
    raw = np.asanyarray(nib.load(pdir / "patient003_4d.nii.gz").dataobj)
    series = [c for c in _cases(acdc_source) if c.patient_id == "patient003" and not c.labelled]
    for c in series:
        np.testing.assert_array_equal(c.image, to_slices(raw[..., c.frame - 1]))


def test_acdc_testing_folder_without_group(tmp_path: Path) -> None:
    root = builders.make_acdc(tmp_path / "a", n_patients=1, split="testing", series=False)
    cfg = root / "testing" / "patient001" / "Info.cfg"
    cfg.write_text(
        "\n".join(line for line in cfg.read_text().splitlines() if not line.startswith("Group"))
    )
    src = open_source(root)
    assert not src.problems and len(src.refs) == 2


def test_h5_reader_phases_and_unknown_spacing(h5_source: Path) -> None:
    cases = _cases(h5_source)
    assert len(cases) == 6
    by = {(c.patient_id, c.frame): c for c in cases}
    assert by[("patient001", 1)].phase == Phase.ED
    assert by[("patient001", 12)].phase == Phase.ES
    assert all(c.spacing is None for c in cases)
    assert all(c.label is not None and c.label.dtype == np.uint8 for c in cases)


def test_h5_reader_uses_spacing_attribute(h5_source: Path) -> None:
    import h5py

    with h5py.File(h5_source / "patient001_frame01.h5", "a") as fh:
        fh.attrs["spacing"] = [5.0, 1.0, 1.0]
    case = next(c for c in _cases(h5_source) if c.patient_id == "patient001" and c.frame == 1)
    assert case.spacing == (5.0, 1.0, 1.0)


def test_nnunet_reader(nnunet_source: Path) -> None:
    src = open_source(nnunet_source)
    assert src.label_names == {0: "background", 1: "RV", 2: "MYO", 3: "LV"}
    cases = _cases(nnunet_source)
    assert sum(c.labelled for c in cases) == 3
    unl = [c for c in cases if not c.labelled]
    assert [c.patient_id for c in unl] == ["test_001"]
    assert cases[0].spacing == builders.SPACING


def test_nnunet_v1_labels_and_frame_names(tmp_path: Path) -> None:
    import json

    root = builders.make_nnunet(tmp_path / "n", n_cases=0, n_test=0)
    for frame, seed in ((1, 1), (9, 2)):
        cid = f"patient007_frame{frame:02d}"
        builders.write_pair(
            root / "imagesTr" / f"{cid}_0000.nii.gz", root / "labelsTr" / f"{cid}.nii.gz", seed
        )
    spec = {
        "modality": {"0": "MRI"},
        "labels": {"0": "bg", "1": "RV", "2": "MYO", "3": "LV"},
        "numTraining": 2,
    }
    (root / "dataset.json").write_text(json.dumps(spec))
    src = open_source(root)
    assert src.label_names[3] == "LV"
    phases = {r.frame: r.phase for r in src.refs}
    assert phases == {1: Phase.ED, 9: Phase.ES}
    assert {r.patient_id for r in src.refs} == {"patient007"}


def test_nifti_folder_reader(nifti_folder: Path) -> None:
    cases = _cases(nifti_folder)
    assert len(cases) == 2 + 3
    assert not any(c.labelled for c in cases)
    assert sorted(c.frame for c in cases if c.patient_id == "cine") == [1, 2, 3]


def test_forced_format_overrides_detection(acdc_source: Path) -> None:
    src = open_source(acdc_source, "nifti-folder")
    assert src.format == "nifti-folder"
    assert all(r.kind in ("unlabelled", "series") for r in src.refs)
