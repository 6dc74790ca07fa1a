"""Tiny 2D sources (PNG/TIFF slices with masks) in both layouts medssl reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from tests import builders

LABELS = {"background": 0, "RV": 1, "MYO": 2, "LV": 3}


def slice_pair(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A ``(H, W)`` uint16 image and its uint8 label map (all four classes)."""
    image, label = builders.make_volume(seed)
    return np.clip(np.round(image[0]), 0, 65535).astype(np.uint16), label[0]


def save(path: Path, pixels: np.ndarray) -> Path:
    """Write ``pixels`` with Pillow in the format the suffix names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def make_image_folder(root: Path, n: int = 2, suffix: str = ".png", labelled: bool = True) -> Path:
    """``images/caseI{suffix}`` (+ ``masks/caseI.png``, ``labels.json``)."""
    for i in range(1, n + 1):
        image, label = slice_pair(700 + i)
        save(root / "images" / f"case{i}{suffix}", image)
        if labelled:
            save(root / "masks" / f"case{i}.png", label)
    if labelled:
        (root / "labels.json").write_text(json.dumps(LABELS))
    return root


def make_nnunet_2d(root: Path, n_cases: int = 2, n_test: int = 1, ending: str = ".png") -> Path:
    """nnU-Net's 2D layout: ``dataset.json`` with ``file_ending`` ``.png``."""
    for c in range(1, n_cases + 1):
        image, label = slice_pair(800 + c)
        save(root / "imagesTr" / f"case_{c:03d}_0000{ending}", image)
        save(root / "labelsTr" / f"case_{c:03d}{ending}", label)
    for c in range(1, n_test + 1):
        save(root / "imagesTs" / f"test_{c:03d}_0000{ending}", slice_pair(900 + c)[0])
    spec = {
        "channel_names": {"0": "MRI"},
        "labels": LABELS,
        "numTraining": n_cases,
        "file_ending": ending,
    }
    (root / "dataset.json").write_text(json.dumps(spec))
    return root
