"""Reading side of the preprocessing cache: :class:`SliceCache` and :class:`VolumeInfo`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from medssl.artifacts.labels import LabelSet
from medssl.artifacts.manifest import CacheManifest, CachePaths
from medssl.data.case import Case, Phase
from medssl.data.preprocess import NormStats
from medssl.errors import DataError


@dataclass(frozen=True)
class VolumeInfo:
    """One cached 3D volume (see :mod:`medssl.data.cache_write`); ``meta`` holds the
    patient metadata the source gave (:meth:`medssl.data.case.PatientMeta.to_dict`;
    empty in caches written before it was kept)."""

    patient: str
    phase: str
    frame: int | None
    labelled: bool
    from_series: bool
    shape: tuple[int, int, int]
    stored_shape: tuple[int, int, int]
    spacing: tuple[float, float, float] | None
    sources: tuple[str, ...]
    norm: dict
    first_slice: int
    n_slices: int
    meta: dict = field(default_factory=dict)

    @classmethod
    def from_case(
        cls,
        case: Case,
        from_series: bool,
        spacing,
        stored_shape,
        stats: NormStats,
        first_slice: int,
        root: Path,
    ) -> VolumeInfo:
        def rel(p: Path) -> str:
            return str(p.relative_to(root)) if p.is_relative_to(root) else str(p)

        return cls(
            case.patient_id,
            str(Phase(case.phase)),
            case.frame,
            case.labelled,
            from_series,
            tuple(int(s) for s in case.image.shape),
            tuple(int(s) for s in stored_shape),
            None if spacing is None else tuple(float(s) for s in spacing),
            tuple(rel(p) for p in case.sources),
            asdict(stats),
            first_slice,
            int(stored_shape[0]),
            case.meta.to_dict(),
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> VolumeInfo:
        d = dict(d)
        for key in ("shape", "stored_shape", "sources"):
            d[key] = tuple(d[key])
        if d["spacing"] is not None:
            d["spacing"] = tuple(d["spacing"])
        return cls(**d)


class SliceCache:
    """A prepared cache opened for reading; arrays are memory-mapped, not loaded.

    Attributes:
        path: cache folder.
        manifest: the typed ``manifest.json`` (:class:`~medssl.artifacts.manifest.CacheManifest`).
        volumes: one :class:`VolumeInfo` per volume, in storage order.
        index: per-slice columns ``volume, slice, height, width, img_offset, lab_offset``.
    """

    def __init__(
        self,
        path: Path,
        manifest: CacheManifest | dict,
        volumes: list[VolumeInfo],
        index: dict[str, np.ndarray],
        images: np.ndarray,
        labels: np.ndarray,
    ) -> None:
        self.path = path
        self.manifest = manifest if isinstance(manifest, CacheManifest) else CacheManifest(manifest)
        self.volumes = volumes
        self.index = index
        self.images = images
        self.labels = labels

    @classmethod
    def open(cls, path: str | Path) -> SliceCache:
        """Open a cache, checking that it is complete (array sizes match the manifest).

        Raises:
            DataError: when the folder is not a complete medssl cache.
        """
        path = Path(path)
        files = CachePaths(path)
        man_path = files.manifest
        if not man_path.is_file():
            raise DataError(path, "not-a-cache", f"no {man_path.name} (run `medssl data prepare`)")
        try:
            manifest = json.loads(man_path.read_text())
            volumes = [VolumeInfo.from_dict(v) for v in json.loads(files.volumes.read_text())]
            with np.load(files.slice_index) as npz:
                index = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(path, "corrupt-cache", f"index files unreadable ({exc})") from exc
        images = cls._map(files.images, manifest["images"])
        labels = cls._map(files.labels, manifest["labels"])
        if len(index["volume"]) != manifest["n_slices"]:
            raise DataError(path, "corrupt-cache", "slice index length differs from manifest")
        return cls(path, manifest, volumes, index, images, labels)

    @staticmethod
    def _map(file: Path, spec: dict) -> np.ndarray:
        dtype = np.dtype(spec["dtype"])
        expected = int(spec["elements"]) * dtype.itemsize
        size = file.stat().st_size if file.exists() else -1
        if size != expected:
            raise DataError(file, "truncated-cache", f"{size} bytes, manifest says {expected}")
        if expected == 0:
            return np.zeros(0, dtype=dtype)
        return np.memmap(file, dtype=dtype, mode="r")

    def __len__(self) -> int:
        return len(self.index["volume"])

    @property
    def label_set(self) -> LabelSet:
        """The dataset's label set, as the reader declared it (stored in the manifest)."""
        return self.manifest.label_set

    @property
    def label_names(self) -> dict[int, str]:
        """``{value: name}`` of the labels; empty for an unlabelled pool."""
        return {int(k): v for k, v in self.manifest["label_names"].items()}

    @property
    def num_classes(self) -> int:
        return max(self.label_names, default=0) + 1

    def slice_shape(self, i: int) -> tuple[int, int]:
        return int(self.index["height"][i]), int(self.index["width"][i])

    def image(self, i: int) -> np.ndarray:
        """Normalised slice ``i`` as a float32 ``(H, W)`` array (a copy)."""
        h, w = self.slice_shape(i)
        off = int(self.index["img_offset"][i])
        return np.asarray(self.images[off : off + h * w], dtype=np.float32).reshape(h, w)

    def label(self, i: int) -> np.ndarray | None:
        """Label of slice ``i`` as uint8 ``(H, W)``, or ``None`` for unlabelled slices."""
        off = int(self.index["lab_offset"][i])
        if off < 0:
            return None
        h, w = self.slice_shape(i)
        return np.array(self.labels[off : off + h * w]).reshape(h, w)

    def volume_of(self, i: int) -> VolumeInfo:
        return self.volumes[int(self.index["volume"][i])]

    def volume_slices(self, vid: int) -> range:
        v = self.volumes[vid]
        return range(v.first_slice, v.first_slice + v.n_slices)

    def verify(self) -> list[str]:
        """Recompute the array checksums; return the names of arrays that differ."""
        bad = []
        for name, arr in (("images", self.images), ("labels", self.labels)):
            h = hashlib.blake2b()
            step = 1 << 24
            raw = arr.view(np.uint8) if arr.size else arr
            for start in range(0, raw.size, step):
                h.update(raw[start : start + step].tobytes())
            if h.hexdigest() != self.manifest[name]["blake2b"]:
                bad.append(name)
        return bad
