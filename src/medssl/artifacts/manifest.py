"""The preprocessing cache's manifest: typed properties over ``manifest.json``.

Modelled on nnU-Net v2's ``PlansManager`` (typed properties over one JSON file). The
manifest holds everything later steps need to know about the data without opening the
source again: the preprocessing config, the label set, intensity statistics, the source
fingerprints, the patient split and any per-patient truth the source carries (the
phantom's clinical indices). :class:`CachePaths` names the cache's files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medssl.artifacts.atomic import read_json, write_json
from medssl.artifacts.labels import LabelSet
from medssl.artifacts.split import Split


@dataclass(frozen=True)
class CachePaths:
    """The files of a cache folder."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def volumes(self) -> Path:
        return self.root / "volumes.json"

    @property
    def slice_index(self) -> Path:
        return self.root / "slices.npz"

    @property
    def images(self) -> Path:
        return self.root / "images.bin"

    @property
    def labels(self) -> Path:
        return self.root / "labels.bin"

    @property
    def split(self) -> Path:
        """A copy of the manifest's split, for people and other tools."""
        return self.root / "split.json"


class CacheManifest:
    """``manifest.json`` of a cache, read once; each field is a typed property.

    Args:
        data: the parsed JSON object.
    """

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = dict(data)

    @classmethod
    def load(cls, path: str | Path) -> CacheManifest:
        """Read the manifest of the cache folder ``path`` (or the file itself)."""
        path = Path(path)
        return cls(read_json(CachePaths(path).manifest if path.is_dir() else path))

    def save(self, folder: str | Path) -> None:
        """Write ``manifest.json`` (and ``split.json`` when a split is set) into ``folder``."""
        paths = CachePaths(Path(folder))
        write_json(paths.manifest, self._data)
        if self.split is not None:
            self.split.save(paths.split)

    def to_dict(self) -> dict:
        return dict(self._data)

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def replace(self, **fields: Any) -> CacheManifest:
        """A copy with ``fields`` set (the typed values are converted for JSON)."""
        data = dict(self._data)
        for key, value in fields.items():
            if isinstance(value, LabelSet):
                data["label_set"] = value.to_dict()
                data["label_names"] = {str(k): v for k, v in value.names.items()}
            elif isinstance(value, Split):
                data["split"] = value.to_dict()
            else:
                data[key] = value
        return CacheManifest(data)

    # --- typed properties ---------------------------------------------------------
    @property
    def version(self) -> int:
        return int(self._data.get("medssl_cache_version", 0))

    @property
    def source_root(self) -> Path:
        return Path(self._data["source_root"])

    @property
    def format(self) -> str:
        return str(self._data["format"])

    @property
    def prepare_config(self) -> dict:
        """The :class:`~medssl.data.preprocess.PrepareConfig` as a dict."""
        return dict(self._data["config"])

    @property
    def label_set(self) -> LabelSet:
        if "label_set" in self._data:
            return LabelSet.from_dict(self._data["label_set"])
        return LabelSet.from_names(self._data.get("label_names", {}))

    @property
    def stats(self) -> dict:
        return dict(self._data.get("stats", {}))

    @property
    def fingerprints(self) -> dict:
        return dict(self._data.get("fingerprints", {}))

    @property
    def source_hash(self) -> str | None:
        return self._data.get("source_hash")

    @property
    def n_slices(self) -> int:
        return int(self._data["n_slices"])

    @property
    def split(self) -> Split | None:
        """The patient split written by ``medssl data prepare`` (``None`` in caches
        prepared before the split lived here)."""
        data = self._data.get("split")
        return None if data is None else Split.from_dict(data)

    @property
    def truth(self) -> dict[str, dict]:
        """Per-patient truth the source carried (the phantom's clinical indices)."""
        return dict(self._data.get("truth") or {})
