"""Checked reading of one 2D image or mask (PNG, TIFF) with Pillow.

Every failure is a one-line :class:`~medssl.errors.DataError` naming the file and the
check. Images are grayscale: a colour file whose colour channels are all equal (a
grayscale slice saved as RGB, as many export tools do) is read as that one channel,
any other colour file is refused (``rgb-image`` / ``rgb-mask``); an alpha channel must
be fully opaque. A palette (``P``) mask is read as its palette indices, which is how
tools that colour label maps store the labels. A multi-page TIFF is refused: medssl
reads 2D slices from these formats.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from medssl.data.nifti import check_file_bytes
from medssl.errors import DataError

#: File suffixes read as 2D slices.
IMAGE2D_SUFFIXES = (".png", ".tif", ".tiff")
#: Largest image (in pixels) a header may declare before it is refused unread.
MAX_PIXELS = 2**28
#: Pillow modes that hold one grayscale channel.
_GRAY_MODES = frozenset({"1", "L", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"})
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error, MemoryError)


def is_image2d(path: Path) -> bool:
    """True for a file named as a PNG or TIFF."""
    return path.name.lower().endswith(IMAGE2D_SUFFIXES)


def strip_image2d_suffix(name: str) -> str:
    """``"case_0000.png"`` → ``"case_0000"``; other names unchanged."""
    for suffix in IMAGE2D_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _open(path: Path) -> Image.Image:
    check_file_bytes(path)
    try:
        im = Image.open(path)
    except (UnidentifiedImageError, *_DECODE_ERRORS) as exc:
        raise DataError(path, "unreadable", f"not a readable PNG/TIFF image ({exc})") from exc
    w, h = im.size
    if w <= 0 or h <= 0 or w * h > MAX_PIXELS:
        im.close()
        raise DataError(path, "absurd-size", f"declares a {h} x {w} image; refusing")
    if getattr(im, "n_frames", 1) > 1:
        n = im.n_frames
        im.close()
        raise DataError(path, "multi-page", f"holds {n} pages; medssl reads one 2D slice a file")
    return im


def _decode(path: Path, im: Image.Image, as_mask: bool) -> np.ndarray:
    try:
        im.load()
        if im.mode in _GRAY_MODES or (as_mask and im.mode == "P"):
            return np.array(im)
        if im.mode not in ("RGB", "RGBA", "LA"):
            im = im.convert("RGBA" if "A" in im.mode or im.mode == "P" else "RGB")
        return np.array(im)
    except _DECODE_ERRORS as exc:
        raise DataError(path, "truncated", f"pixel data cannot be read in full ({exc})") from exc


def _to_gray(path: Path, pixels: np.ndarray, as_mask: bool) -> np.ndarray:
    """One channel of a ``(H, W, C)`` colour array whose colour channels are equal."""
    n_colour = 1 if pixels.shape[2] == 2 else 3
    colour, alpha = pixels[..., :n_colour], pixels[..., n_colour:]
    if alpha.size and not (alpha == np.iinfo(alpha.dtype).max).all():
        raise DataError(path, "alpha-channel", "has transparent pixels; save it without alpha")
    if not (colour == colour[..., :1]).all():
        check, what = ("rgb-mask", "mask") if as_mask else ("rgb-image", "image")
        raise DataError(
            path, check, f"colour {what} (channels differ); medssl reads one grayscale channel"
        )
    return np.ascontiguousarray(colour[..., 0])


def read_image2d(path: Path, *, as_mask: bool = False) -> np.ndarray:
    """Read a 2D PNG/TIFF as ``(H, W)``: float32 for an image, stored values for a mask.

    Args:
        path: the file.
        as_mask: keep the stored integer values (and palette indices) instead of
            converting to float32; values are checked later by
            :func:`medssl.data.checks.check_label_values`.

    Raises:
        DataError: empty, unreadable or truncated file, absurd size, several pages,
            colour channels that differ, or transparency; the message names the file.
    """
    with _open(path) as im:
        pixels = _decode(path, im, as_mask)
    if pixels.ndim == 3:
        pixels = _to_gray(path, pixels, as_mask)
    if pixels.dtype == bool:
        pixels = pixels.astype(np.uint8)
    return pixels if as_mask else pixels.astype(np.float32, copy=False)
