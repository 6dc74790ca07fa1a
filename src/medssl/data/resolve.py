"""Turn a ``--data`` argument (a prepared cache or a source folder) into an open cache."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from medssl.artifacts.manifest import CachePaths
from medssl.data.cache_read import SliceCache
from medssl.data.cache_write import prepare_cache
from medssl.data.preprocess import PrepareConfig
from medssl.errors import DataError

log = logging.getLogger(__name__)


def default_cache_dir(source: Path) -> Path:
    """``$MEDSSL_CACHE_DIR`` (or ``~/.cache/medssl``) / ``<name>-<hash of the path>``."""
    base = Path(os.environ.get("MEDSSL_CACHE_DIR", Path.home() / ".cache" / "medssl"))
    digest = hashlib.blake2b(str(source.resolve()).encode(), digest_size=6).hexdigest()
    return base / f"{source.resolve().name}-{digest}"


def resolve_cache(
    data: str | Path, cache_dir: str | Path | None = None, config: PrepareConfig | None = None
) -> SliceCache:
    """Open ``data`` as a cache, or prepare the source folder ``data`` first.

    Args:
        data: a cache folder (holds ``manifest.json``) or a source folder.
        cache_dir: where to put the cache of a source (default :func:`default_cache_dir`).
        config: preprocessing settings for a source.
    """
    path = Path(data)
    if CachePaths(path).manifest.is_file():
        return SliceCache.open(path)
    if not path.exists():
        raise DataError(path, "missing-source", "no such cache or source folder")
    out = Path(cache_dir) if cache_dir else default_cache_dir(path)
    log.info("preparing cache of %s in %s", path, out)
    return SliceCache.open(prepare_cache(path, out, config, progress=True).path)
