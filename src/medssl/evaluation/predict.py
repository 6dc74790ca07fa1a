"""Segment new volumes with a fine-tuned run and write them in the input's format.

* NIfTI in → NIfTI out (uint8 labels) with the input's affine and header; nnU-Net
  naming: ``CASE_0000.nii.gz`` → ``CASE.nii.gz``, other names kept. 4D series are
  segmented frame by frame.
* h5 in (``image`` [+ ``label``]) → h5 out with ``image``, ``prediction`` and, when
  present, ``label``.
* DICOM in (a folder of images, or one image of a stack) → DICOM-SEG out
  (:mod:`medssl.evaluation.dicom_seg`): each stack (see
  :mod:`medssl.data.readers.dicom`) becomes one SEG series named
  ``PATIENT_seriesN``, one instance per cine phase (``PATIENT_seriesN_frameYY.seg.dcm``),
  its frames referencing their source images (or, in enhanced multi-frame files, their
  source frames).
* post-processing: the run's ``postprocessing.json`` (largest connected component of the
  structures where it raised the validation Dice; written by ``medssl evaluate``) is
  applied unless ``postprocess=False``.
* ``overlays/NAME.png``: image, ground truth (a ``label`` dataset, or a ``_gt`` NIfTI
  beside the input) and prediction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
from tqdm.auto import tqdm

from medssl.data.checks import check_finite, check_label_values
from medssl.data.dicom import is_dicom_file
from medssl.data.dicom_stack import StackPlan
from medssl.data.nifti import (
    frames_of,
    is_nifti,
    read_nifti,
    spacing_from_zooms,
    strip_nifti_suffix,
    to_slices,
    volume_ndim,
    write_nifti,
)
from medssl.data.readers.base import safe_stem
from medssl.data.readers.dicom import holds_dicom, list_stacks, stack_ref
from medssl.errors import DataError, DataErrors
from medssl.evaluation.inference import predict_volume
from medssl.evaluation.overlays import save_overlay
from medssl.evaluation.run_model import RunModel, load_run_model

log = logging.getLogger(__name__)


def output_name(path: Path) -> str:
    """nnU-Net style case name: strip the suffix and a trailing ``_0000`` channel tag."""
    stem = strip_nifti_suffix(path.name) if is_nifti(path) else path.stem
    return stem[: -len("_0000")] if stem.endswith("_0000") else stem


def find_inputs(path: Path) -> list[Path]:
    """Volumes to segment: ``path`` itself, or every NIfTI/h5 file below it except
    ``_gt`` label files."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(path, "missing-input", "no such file or folder")
    files = sorted(p for p in path.rglob("*") if p.is_file() and (is_nifti(p) or p.suffix == ".h5"))
    return [p for p in files if not strip_nifti_suffix(p.name).endswith("_gt")]


def find_dicom_stacks(path: Path) -> list[StackPlan]:
    """DICOM stacks to segment: every stack below a folder, or the stack holding a file
    (SEGs and label volumes there are not segmented and not checked).

    Raises:
        DataErrors: when any DICOM image or stack there fails a check.
    """
    if path.is_file() and not is_dicom_file(path):
        return []
    if path.is_dir() and not holds_dicom(path):
        return []
    stacks, problems = list_stacks(path if path.is_dir() else path.parent)
    if problems:
        raise DataErrors(problems)
    return stacks if path.is_dir() else [p for p in stacks if path in p.files]


def _nifti_truth(path: Path, shape: tuple, labels: dict[int, str]) -> np.ndarray | None:
    stem = strip_nifti_suffix(path.name)
    gt = path.with_name(stem + "_gt" + path.name[len(stem) :])
    if not gt.exists():
        return None
    vol = read_nifti(gt, 3, as_label=True)
    label = to_slices(check_label_values(gt, vol.data, labels))
    return label if label.shape == shape else None


Prediction = tuple[Path, np.ndarray, np.ndarray, np.ndarray | None]


Post = Callable[[np.ndarray], np.ndarray]


def _predict_nifti(run: RunModel, path: Path, out: Path, post: Post) -> Prediction:
    ndim = volume_ndim(path)
    vol = read_nifti(path, ndim)
    check_finite(path, vol.data)
    spacing = spacing_from_zooms(vol.zooms)
    frames = frames_of(vol.data)
    preds = [
        post(predict_volume(run.model, to_slices(f), run.prepare, spacing, precision=run.precision))
        for f in frames
    ]
    native = [np.transpose(p, (2, 1, 0)) for p in preds]
    data = native[0] if ndim == 3 else np.stack(native, axis=-1)
    target = out / f"{output_name(path)}.nii.gz"
    write_nifti(target, data, vol.affine, vol.header, dtype=np.uint8)
    image = to_slices(frames[0])
    truth = _nifti_truth(path, image.shape, run.label_names) if ndim == 3 else None
    return target, image, preds[0], truth


def _predict_h5(run: RunModel, path: Path, out: Path, post: Post) -> Prediction:
    try:
        with h5py.File(path, "r") as fh:
            if "image" not in fh:
                raise DataError(path, "missing-dataset", "no 'image' dataset")
            image = fh["image"][()].astype(np.float32)
            label = fh["label"][()] if "label" in fh else None
    except OSError as exc:
        raise DataError(path, "unreadable", f"not a readable HDF5 file ({exc})") from exc
    if image.ndim != 3:
        raise DataError(
            path, "dimensionality", f"'image' must be (slices, H, W), got {image.shape}"
        )
    check_finite(path, image)
    pred = post(predict_volume(run.model, image, run.prepare, None, precision=run.precision))
    target = out / f"{output_name(path)}.h5"
    with h5py.File(target, "w") as fh:
        fh["image"] = image
        fh["prediction"] = pred
        if label is not None:
            fh["label"] = label
    return target, image, pred, label


def _stack_name(plan: StackPlan, used: set[str]) -> str:
    first = plan.grid[0][0]
    number = first.series_number
    base = safe_stem(first.patient_id) + (f"_series{number}" if number is not None else "")
    name, i = base, 1
    while name in used:
        i += 1
        name = f"{base}_{i}"
    used.add(name)
    return name


def _predict_dicom(
    run: RunModel, plan: StackPlan, name: str, out: Path, post: Post
) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """One SEG instance per phase of the stack (one SEG series); single-frame sources
    referenced per image, frames of enhanced multi-frame sources per frame."""
    from highdicom import UID

    from medssl.evaluation.dicom_seg import write_dicom_seg, write_dicom_seg_frames

    series_uid = UID()
    targets: list[Path] = []
    first: tuple[np.ndarray, np.ndarray] | None = None
    cases = stack_ref(plan).load()
    for number, (case, images) in enumerate(zip(cases, plan.grid, strict=True), start=1):
        raw = predict_volume(
            run.model, case.image, run.prepare, case.spacing, precision=run.precision
        )
        pred = post(raw)
        tag = f"_frame{case.frame:02d}" if case.frame is not None else ""
        target = out / f"{name}{tag}.seg.dcm"
        if all(im.frame is None for im in images):
            paths = [im.path for im in images]
            write_dicom_seg(target, paths, pred, run.label_set, series_uid, number)
        else:
            write_dicom_seg_frames(target, images, pred, run.label_set, series_uid, number)
        targets.append(target)
        if first is None:
            first = (case.image, pred)
    if first is None:
        raise DataError(plan.files[0], "empty-stack", "the stack decoded to no volume")
    return targets, *first


def predict(
    model_dir: str | Path,
    inputs: str | Path,
    out: str | Path,
    overlays: bool = True,
    progress: bool = False,
    postprocess: bool = True,
) -> list[Path]:
    """Segment ``inputs`` (a file or folder) with the run in ``model_dir``.

    Args:
        postprocess: apply the run's ``postprocessing.json`` when it has one.

    Returns:
        The written segmentation files.
    """
    run = load_run_model(model_dir)
    post = _postprocessing(run) if postprocess else (lambda pred: pred)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    inputs = Path(inputs)
    files = [p for p in find_inputs(inputs) if not is_dicom_file(p)]
    stacks = find_dicom_stacks(inputs)
    if not files and not stacks:
        raise DataError(inputs, "missing-input", "no NIfTI, h5 or DICOM image to segment")
    written: list[Path] = []
    for path in tqdm(files, desc="predicting", disable=not progress):
        fn = _predict_h5 if path.suffix == ".h5" else _predict_nifti
        target, image, pred, truth = fn(run, path, out, post)
        if overlays:
            _overlay(run, out, output_name(path), image, pred, truth)
        log.info("wrote %s", target)
        written.append(target)
    used: set[str] = set()
    for plan in tqdm(stacks, desc="predicting DICOM", disable=not progress):
        name = _stack_name(plan, used)
        targets, image, pred = _predict_dicom(run, plan, name, out, post)
        if overlays:
            _overlay(run, out, name, image, pred, None)
        log.info("wrote %d DICOM-SEG instance(s) for %s", len(targets), name)
        written.extend(targets)
    return written


def _overlay(
    run: RunModel,
    out: Path,
    name: str,
    image: np.ndarray,
    pred: np.ndarray,
    truth: np.ndarray | None,
) -> None:
    save_overlay(out / "overlays" / f"{name}.png", image, pred, truth, name, run.num_classes)


def _postprocessing(run: RunModel) -> Post:
    from medssl.artifacts.rundir import RunDir
    from medssl.evaluation.postprocess import PostProcessing

    path = RunDir(run.run_dir).postprocessing_file
    if not path.is_file():
        log.info("%s: no %s (medssl evaluate decides it): none applied", run.run_dir, path.name)
        return lambda pred: pred
    pp = PostProcessing.load(path)
    names = [run.label_names.get(c, str(c)) for c in pp.labels]
    log.info("post-processing: largest component of %s", ", ".join(names) or "no structure")
    return pp.apply
