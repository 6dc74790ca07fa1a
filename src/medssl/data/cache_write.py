"""The preprocessing cache: normalised slices in slice-major memory-mapped arrays.

Layout of a cache folder::

    manifest.json   format version, preprocessing config, source root/format, per-file
                    fingerprints (size, mtime, BLAKE2 content hash) and their combined
                    hash, array byte sizes and checksums, label names, dataset statistics
    volumes.json    one entry per 3D volume: patient, phase, frame, labelled, from_series,
                    original shape, spacing, source files, normalisation statistics,
                    first slice and slice count, patient metadata (``meta``: group,
                    height_cm, weight_kg, age_years, sex, frames, where the source gives them)
    slices.npz      per-slice index: volume, slice, height, width, image offset,
                    label offset (-1 when unlabelled)
    images.bin      all slices, flattened and concatenated (float16 or float32)
    labels.bin      label slices of labelled volumes (uint8), concatenated

Slices keep their true size (no padding, no distortion); ``(height, width, offset)``
locate each one. A cache is written under a temporary name and renamed into place,
so a folder named as the cache is always complete; a cache whose sources changed, whose
config differs or whose arrays are truncated is rebuilt, never silently used.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from medssl.artifacts.atomic import atomic_write, read_json, write_json
from medssl.artifacts.manifest import CacheManifest, CachePaths
from medssl.data.cache_read import SliceCache, VolumeInfo
from medssl.data.fingerprint import fingerprint_files, source_hash
from medssl.data.phantom.generate import TRUTH_FILE
from medssl.data.preprocess import PrepareConfig, normalize_volume, resample_inplane
from medssl.data.readers import open_source
from medssl.errors import DataError, DataErrors

log = logging.getLogger(__name__)

CACHE_VERSION = 1


@dataclass(frozen=True)
class PrepareResult:
    """Outcome of :func:`prepare_cache`: the cache folder and whether it was (re)built."""

    path: Path
    built: bool
    reason: str


def cache_is_current(out: Path, root: Path, config: PrepareConfig, fmt: str | None) -> str | None:
    """Return ``None`` when ``out`` is a complete cache of ``root`` with ``config``.

    Otherwise return the reason it must be (re)built.
    """
    try:
        cache = SliceCache.open(out)
    except DataError as err:
        return (
            f"cache unusable ({err.check}: {err.detail})"
            if CachePaths(out).manifest.exists()
            else "no cache yet"
        )
    man = cache.manifest
    if PrepareConfig.from_dict(man["config"]) != config:
        return "preprocessing config changed"
    if fmt is not None and man.get("format") != fmt:
        return "source format changed"
    if Path(man.get("source_root", "")) != root.resolve():
        return "cache was built from another source folder"
    files = sorted(Path(f) for f in man["fingerprints"])
    current = fingerprint_files(
        root, _source_files(root, fmt or man["format"]), man["fingerprints"]
    )
    if sorted(Path(f) for f in current) != files:
        return "source files added or removed"
    if source_hash(current) != man["source_hash"]:
        return "source file contents changed"
    return None


#: files at a source's root that define its label set (names and values): a cache built
#: before one of them changed holds the old names, so they are fingerprinted too
LABEL_DEFINITION_FILES = ("labels.json", "dataset.json")


def _source_files(root: Path, fmt: str) -> list[Path]:
    source = open_source(root, fmt)
    files = {f for ref in source.refs for f in ref.files}
    files.update(e.path for e in source.problems if e.path.is_file())
    files.update(root / name for name in LABEL_DEFINITION_FILES if (root / name).is_file())
    return sorted(files)


def prepare_cache(
    root: str | Path,
    out: str | Path,
    config: PrepareConfig | None = None,
    format: str | None = None,
    force: bool = False,
    progress: bool = False,
    split_seed: int | None = None,
) -> PrepareResult:
    """Build (or reuse) the cache of a source, and write its patient split.

    The split is written once, into the manifest (and ``split.json`` beside it), and every
    run reads it from there (:func:`~medssl.data.splits.split_for_cache`).

    Args:
        root: source folder.
        out: cache folder to create.
        config: preprocessing settings.
        format: reader name, ``None`` to detect.
        force: rebuild even when the cache is current.
        progress: show a progress bar.
        split_seed: seed of the default split (see :func:`~medssl.data.splits.make_split`);
            ``None`` keeps the split the cache holds (seed 0 for a new cache).

    Raises:
        DataErrors: when any source file fails a check; nothing is written then.
    """
    root, out = Path(root), Path(out)
    config = config or PrepareConfig()
    reason = "forced" if force else cache_is_current(out, root, config, format)
    if reason is None:
        log.info("cache %s is current", out)
        _store_split(out, split_seed)
        return PrepareResult(out, False, "current")
    log.info("building cache %s (%s)", out, reason)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        _write_cache(root, tmp, config, format, progress)
        _swap_into_place(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    _store_split(out, split_seed)
    return PrepareResult(out, True, reason)


def _store_split(out: Path, seed: int | None) -> None:
    """Write the default split into the manifest unless it already holds this one."""
    from medssl.data.splits import default_split

    cache = SliceCache.open(out)
    manifest = cache.manifest
    stored = manifest.split
    if stored is not None and (seed is None or stored.seed == seed):
        return
    split = default_split(cache, 0 if seed is None else seed)
    if stored is not None:
        log.warning("cache %s: split seed %s replaced by %s", out, stored.seed, split.seed)
    manifest.replace(split=split).save(out)


def _swap_into_place(tmp: Path, out: Path) -> None:
    old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def _write_cache(
    root: Path, tmp: Path, config: PrepareConfig, fmt: str | None, progress: bool
) -> None:
    source = open_source(root, fmt)
    errors = list(source.problems)
    refs = [r for r in source.refs if config.include_series or r.kind != "series"]
    tmp.mkdir(parents=True)
    writer = _ArrayWriter(tmp, np.dtype(config.dtype))
    volumes: list[VolumeInfo] = []
    for ref in tqdm(refs, desc="preparing", unit="vol", disable=not progress):
        try:
            for case in ref.load():
                volumes.append(writer.add(case, ref.kind == "series", config, root, len(volumes)))
        except DataError as err:
            errors.append(err)
    writer.close()
    if errors:
        raise DataErrors(errors)
    if not volumes:
        raise DataError(root, "empty-source", "no volumes to cache")
    fingerprints = fingerprint_files(root, _source_files(root, source.format))
    manifest = {
        "medssl_cache_version": CACHE_VERSION,
        "source_root": str(root.resolve()),
        "format": source.format,
        "config": config.to_dict(),
        "label_names": {str(k): v for k, v in source.label_names.items()},
        "label_set": source.labels.to_dict(),
        "fingerprints": fingerprints,
        "source_hash": source_hash(fingerprints),
        **writer.summary(),
        "stats": writer.stats(volumes),
    }
    truth = _source_truth(root)
    if truth:
        manifest["truth"] = truth
    paths = CachePaths(tmp)
    write_json(paths.volumes, [v.to_dict() for v in volumes], indent=None)
    with atomic_write(paths.slice_index) as index_file, index_file.open("wb") as fh:
        np.savez(fh, **writer.index())
    CacheManifest(manifest).save(tmp)


def _source_truth(root: Path) -> dict[str, dict]:
    """Per-patient truth the source carries (the phantom's clinical indices), kept in the
    manifest so that later steps never read the source folder again."""
    path = root / TRUTH_FILE
    if not path.is_file():
        return {}
    data = read_json(path)
    patients = data.get("patients", data) if isinstance(data, dict) else {}
    return {str(k): v for k, v in patients.items() if isinstance(v, dict)}


class _ArrayWriter:
    """Streams normalised slices into ``images.bin`` / ``labels.bin`` with checksums."""

    def __init__(self, folder: Path, dtype: np.dtype) -> None:
        self.dtype = dtype
        self.img_fh = CachePaths(folder).images.open("wb")
        self.lab_fh = CachePaths(folder).labels.open("wb")
        self.img_hash, self.lab_hash = hashlib.blake2b(), hashlib.blake2b()
        self.img_off = self.lab_off = 0
        self.cols: dict[str, list[int]] = {
            k: [] for k in ("volume", "slice", "height", "width", "img_offset", "lab_offset")
        }
        self.class_counts = np.zeros(256, dtype=np.int64)
        self.moments = np.zeros(3, dtype=np.float64)  # n, sum, sum of squares

    def add(
        self, case, from_series: bool, config: PrepareConfig, root: Path, vid: int
    ) -> VolumeInfo:
        image, label, spacing = case.image, case.label, case.spacing
        if config.target_spacing is not None:
            if spacing is None:
                raise DataError(
                    case.sources[0],
                    "spacing-unknown",
                    "target_spacing needs voxel spacing, which this file lacks",
                )
            image, label, spacing = resample_inplane(image, label, spacing, config.target_spacing)
        norm, stats = normalize_volume(image, config.norm, config.clip_percentiles)
        first = len(self.cols["volume"])
        for k in range(norm.shape[0]):
            self._add_slice(vid, k, norm[k], None if label is None else label[k])
        self.moments += (
            norm.size,
            float(norm.sum(dtype=np.float64)),
            float(np.square(norm, dtype=np.float64).sum()),
        )
        if label is not None:
            self.class_counts += np.bincount(label.ravel(), minlength=256)
        return VolumeInfo.from_case(case, from_series, spacing, norm.shape, stats, first, root)

    def _add_slice(self, vid: int, k: int, img: np.ndarray, lab: np.ndarray | None) -> None:
        data = np.ascontiguousarray(img, dtype=self.dtype).tobytes()
        self.img_fh.write(data)
        self.img_hash.update(data)
        c = self.cols
        c["volume"].append(vid)
        c["slice"].append(k)
        c["height"].append(img.shape[0])
        c["width"].append(img.shape[1])
        c["img_offset"].append(self.img_off)
        self.img_off += img.size
        if lab is None:
            c["lab_offset"].append(-1)
            return
        ldata = np.ascontiguousarray(lab, dtype=np.uint8).tobytes()
        self.lab_fh.write(ldata)
        self.lab_hash.update(ldata)
        c["lab_offset"].append(self.lab_off)
        self.lab_off += lab.size

    def close(self) -> None:
        for fh in (self.img_fh, self.lab_fh):
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()

    def index(self) -> dict[str, np.ndarray]:
        types = {
            "volume": np.int32,
            "slice": np.int32,
            "height": np.int32,
            "width": np.int32,
            "img_offset": np.int64,
            "lab_offset": np.int64,
        }
        return {k: np.asarray(v, dtype=types[k]) for k, v in self.cols.items()}

    def summary(self) -> dict:
        return {
            "images": {
                "dtype": self.dtype.name,
                "elements": self.img_off,
                "blake2b": self.img_hash.hexdigest(),
            },
            "labels": {
                "dtype": "uint8",
                "elements": self.lab_off,
                "blake2b": self.lab_hash.hexdigest(),
            },
            "n_slices": len(self.cols["volume"]),
        }

    def stats(self, volumes: list[VolumeInfo]) -> dict:
        n, s, ss = self.moments
        counts = self.class_counts
        return {
            "volumes": len(volumes),
            "patients": len({v.patient for v in volumes}),
            "labelled_volumes": sum(v.labelled for v in volumes),
            "labelled_slices": sum(v.n_slices for v in volumes if v.labelled),
            "series_frames": sum(v.from_series for v in volumes),
            "normalised_mean": s / n if n else 0.0,
            "normalised_std": float(np.sqrt(max(ss / n - (s / n) ** 2, 0.0))) if n else 0.0,
            "label_voxels": {str(i): int(c) for i, c in enumerate(counts) if c},
        }
