"""Checked decoding of DICOM pixel data (pydicom and its decoder plugins).

Each file is decoded once however many slices it holds (an enhanced multi-frame file
holds a whole cine). Stored values go through, in order: ``MONOCHROME1`` inversion
(so that high values are bright, as for ``MONOCHROME2``), then the modality LUT
(``RescaleSlope``/``RescaleIntercept``; per frame for enhanced images, from their
functional groups). Compressed transfer syntaxes are decoded by whichever pydicom
plugin is installed (JPEG-LS through pyjpegls, RLE natively, JPEG 2000 and baseline
JPEG through Pillow; JPEG Lossless and HTJ2K need the ``dicom-codecs`` extra:
pylibjpeg with its libjpeg, openjpeg and rle plugins). A syntax no installed plugin
decodes is a one-line ``pixel-data`` problem naming the syntax and the extra.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.pixels import get_decoder

from medssl.data.checks import check_finite
from medssl.data.dicom import DicomImage
from medssl.errors import DataError

#: How to install the decoders pydicom lacks.
CODECS_HINT = "pip install 'medssl[dicom-codecs]'"
_READ_ERRORS = (OSError, EOFError, ValueError, TypeError, KeyError, AttributeError)
_PIXEL_ERRORS = (NotImplementedError, RuntimeError, *_READ_ERRORS)


def check_decoder(path: Path, ds: pydicom.Dataset) -> None:
    """Refuse pixel data in a compressed transfer syntax that no installed plugin reads."""
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if syntax is None:
        return
    try:
        compressed = syntax.is_compressed
    except ValueError:
        raise DataError(path, "pixel-data", f"unknown transfer syntax {syntax}") from None
    if not compressed:
        return
    try:
        available = get_decoder(syntax).is_available
    except NotImplementedError:
        raise DataError(
            path, "pixel-data", f"{syntax.name} pixel data: pydicom has no decoder for it"
        ) from None
    if not available:
        raise DataError(
            path, "pixel-data", f"{syntax.name} pixel data needs a decoder: {CODECS_HINT}"
        )


def _inverted(ds: pydicom.Dataset, stored: np.ndarray) -> np.ndarray:
    """``MONOCHROME1`` stored values mirrored within their bit range (others unchanged)."""
    if str(ds.get("PhotometricInterpretation", "")) != "MONOCHROME1":
        return stored
    bits = int(ds.get("BitsStored", 16))
    lo, hi = (
        (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        if ds.get("PixelRepresentation")
        else (0, 2**bits - 1)
    )
    return (lo + hi) - stored.astype(np.int64)


def decode_file(path: Path) -> tuple[pydicom.Dataset, np.ndarray]:
    """The dataset and its stored pixels as ``(frames, rows, columns)`` (inverted for
    ``MONOCHROME1``, not yet rescaled).

    Raises:
        DataError: truncated file or pixel data, or a syntax no installed decoder reads.
    """
    try:
        ds = pydicom.dcmread(path)
    except _READ_ERRORS as exc:
        raise DataError(path, "truncated", f"cannot be read in full ({exc})") from exc
    check_decoder(path, ds)
    try:
        stored = ds.pixel_array
    except _PIXEL_ERRORS as exc:
        syntax = ds.file_meta.get("TransferSyntaxUID")
        if syntax is not None and syntax.is_compressed:
            raise DataError(
                path, "pixel-data", f"cannot decode {syntax.name} pixel data ({exc})"
            ) from exc
        raise DataError(path, "truncated", f"pixel data cannot be read in full ({exc})") from exc
    stored = _inverted(ds, stored)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    return ds, stored.reshape(frames, *stored.shape[-2:]) if stored.ndim >= 2 else stored


def _rescaled(ds: pydicom.Dataset, stored: np.ndarray, image: DicomImage) -> np.ndarray:
    if image.rescale is not None:
        slope, intercept = image.rescale
        return stored[image.frame or 0] * slope + intercept
    return pydicom.pixels.apply_modality_lut(stored[0], ds)


def read_images(images: Sequence[DicomImage]) -> np.ndarray:
    """Decode the slices ``images`` into ``(n, rows, columns)`` float32, each file once.

    Raises:
        DataError: truncated or undecodable pixel data, a matrix other than the header's,
            or non-finite values; the message names the file.
    """
    first = images[0]
    out = np.empty((len(images), first.rows, first.columns), np.float32)
    by_file: dict[Path, list[int]] = defaultdict(list)
    for i, image in enumerate(images):
        by_file[image.path].append(i)
    for path, indices in by_file.items():
        ds, stored = decode_file(path)
        for i in indices:
            image = images[i]
            if (
                stored.ndim != 3
                or stored.shape[1:] != (image.rows, image.columns)
                or ((image.frame or 0) >= stored.shape[0])
            ):
                raise DataError(
                    path,
                    "shape-mismatch",
                    f"pixels {stored.shape} != header {image.rows} x {image.columns}",
                )
            out[i] = _rescaled(ds, stored, image)
        check_finite(path, out[indices])
    return out
