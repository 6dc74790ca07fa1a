"""Carry the full ACDC training slices to a lent GPU machine, 8 bits per pixel.

The device machine receives the working tree and at most 64 MiB in all; the preprocessed
ACDC copy is 118 MB (float32, gzip). This packs the volumes of chosen patients as 8-bit
PNG images (each volume's slices stacked into one tall image, its labels likewise),
split into parts of at most ``--part-mb`` so that each part travels with one call, and
unpacks parts back into the same ``patientXXX_frameYY.h5`` layout (``image`` float32,
``label`` uint8) for ``medssl bench --data``.

The images of this copy are already min-max scaled to [0, 1] per volume, so 8 bits keep
256 levels over each volume's range (error ≤ 1/510 of the range: far below MRI noise,
and irrelevant to throughput); labels are exact. Each volume's entry in ``index.json``
holds its shape, range and the BLAKE2 hashes of its 8-bit pixels and its labels, checked
on unpacking. Only ``image`` and ``label`` travel (this copy has no spacing attribute).

    python benchmarks/gpu_data.py pack ../shared/acdc .gpu-data --split-of CACHE_OR_DATA
    python benchmarks/gpu_data.py unpack .gpu-data/part1 .gpu-src
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

INDEX = "index.json"


def quantise(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``(uint8 volume, low, high)``: 256 levels over the volume's range."""
    low, high = float(image.min()), float(image.max())
    scale = 255.0 / (high - low) if high > low else 0.0
    return np.round((image - low) * scale).astype(np.uint8), low, high


def dequantise(q: np.ndarray, low: float, high: float) -> np.ndarray:
    return (low + q.astype(np.float32) * np.float32((high - low) / 255.0)).astype(np.float32)


def _digest(pixels: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(pixels).tobytes(), digest_size=16).hexdigest()


def _png(volume: np.ndarray) -> bytes:
    s, h, w = volume.shape
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(volume.reshape(s * h, w))).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def _unpng(data: bytes, shape: list[int]) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data))).reshape(shape)


def pack(src: Path, out: Path, patients: set[str] | None, part_mb: float) -> list[Path]:
    """Pack the h5 volumes of ``patients`` (all when ``None``) under ``src`` into parts
    ``out/part1, part2, …`` of at most ``part_mb`` MiB each; return the parts."""
    files = sorted(
        f for f in src.glob("*.h5") if patients is None or f.name.split("_")[0] in patients
    )
    if not files:
        raise SystemExit(f"{src}: no .h5 volumes of the chosen patients")
    parts: list[Path] = []
    index: dict = {}
    size = 0.0
    for f in files:
        with h5py.File(f, "r") as fh:
            image, label = np.asarray(fh["image"], np.float32), np.asarray(fh["label"], np.uint8)
        q, low, high = quantise(image)
        blobs = {"image": _png(q), "label": _png(label)}
        mb = sum(len(b) for b in blobs.values()) / 2**20
        if mb > part_mb:
            raise SystemExit(f"{f}: {mb:.2f} MiB packed, more than a part ({part_mb} MiB)")
        if not parts or size + mb > part_mb:
            if parts:
                (parts[-1] / INDEX).write_text(json.dumps(index, indent=1))
            parts.append(out / f"part{len(parts) + 1}")
            parts[-1].mkdir(parents=True, exist_ok=True)
            index, size = {}, 0.0
        for what, blob in blobs.items():
            (parts[-1] / f"{f.stem}.{what}.png").write_bytes(blob)
        index[f.stem] = {
            "shape": list(image.shape),
            "low": low,
            "high": high,
            "blake2b": _digest(q),
            "label_blake2b": _digest(label),
        }
        size += mb
    (parts[-1] / INDEX).write_text(json.dumps(index, indent=1))
    return parts


def unpack(part: Path, out: Path) -> int:
    """Write the volumes of one part as ``out/<name>.h5``; return how many."""
    index = json.loads((part / INDEX).read_text())
    out.mkdir(parents=True, exist_ok=True)
    for name, entry in index.items():
        q = _unpng((part / f"{name}.image.png").read_bytes(), entry["shape"])
        label = _unpng((part / f"{name}.label.png").read_bytes(), entry["shape"])
        for what, pixels, key in (("image", q, "blake2b"), ("label", label, "label_blake2b")):
            if _digest(pixels) != entry[key]:
                raise SystemExit(f"{part / name}.{what}.png: pixels differ from the packed hash")
        with h5py.File(out / f"{name}.h5", "w") as fh:
            fh["image"] = dequantise(q, entry["low"], entry["high"])
            fh["label"] = label
    return len(index)


def _split_patients(data: str) -> set[str]:
    """The training patients of the default split of ``data`` (what ``medssl bench``
    trains on)."""
    from medssl.data.resolve import resolve_cache
    from medssl.data.splits import default_split

    return set(default_split(resolve_cache(data)).train)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="h5 folder -> 8-bit PNG parts")
    p.add_argument("src", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--split-of", help="keep the training patients of this data's split")
    p.add_argument("--part-mb", type=float, default=30.0)
    u = sub.add_parser("unpack", help="one part -> h5 folder")
    u.add_argument("part", type=Path)
    u.add_argument("out", type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "pack":
        patients = _split_patients(args.split_of) if args.split_of else None
        for part in pack(args.src, args.out, patients, args.part_mb):
            n = len(json.loads((part / INDEX).read_text()))
            mb = sum(f.stat().st_size for f in part.iterdir()) / 2**20
            print(f"{part}: {n} volumes, {mb:.1f} MiB")
    else:
        print(f"{args.part} -> {args.out}: {unpack(args.part, args.out)} volumes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
