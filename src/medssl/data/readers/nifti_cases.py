"""Decoding of volume records (NIfTI, NRRD, MHA) into cases, shared by the volume readers."""

from __future__ import annotations

from pathlib import Path

from medssl.data.case import Case, VolumeRef
from medssl.data.checks import (
    check_finite,
    check_label_values,
    check_same_geometry,
    check_same_shape,
)
from medssl.data.nifti import spacing_from_zooms, to_slices
from medssl.data.volumes import read_volume


def image_case(ref: VolumeRef, path: Path) -> Case:
    """An unlabelled 3D volume, checked for finite intensities."""
    img = read_volume(path, 3)
    check_finite(path, img.data)
    return Case(
        ref.patient_id,
        to_slices(img.data),
        None,
        spacing_from_zooms(img.zooms),
        ref.phase,
        ref.frame,
        ref.meta,
        ref.files,
        img.affine,
    )


def labelled_case(ref: VolumeRef, img_path: Path, gt_path: Path, labels: dict[int, str]) -> Case:
    """An image with its label map: finite, same shape, spacing and affine, declared labels."""
    img = read_volume(img_path, 3)
    gt = read_volume(gt_path, 3, as_label=True)
    check_finite(img_path, img.data)
    check_same_shape(gt_path, img.data.shape, gt.data.shape)
    check_same_geometry(gt_path, img.zooms, gt.zooms, img.affine, gt.affine)
    label = check_label_values(gt_path, gt.data, labels)
    return Case(
        ref.patient_id,
        to_slices(img.data),
        to_slices(label),
        spacing_from_zooms(img.zooms),
        ref.phase,
        ref.frame,
        ref.meta,
        ref.files,
        img.affine,
    )
