"""Turn a ``--data`` argument (a prepared cache or a source folder) into an open cache."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from medssl.artifacts.manifest import CachePaths
from medssl.data.cache_read import SliceCache
from medssl.data.cache_write import prepare_cache
from medssl.data.preprocess import PrepareConfig
from medssl.errors import DataError

log = logging.getLogger(__name__)


def default_cache_dir(source: Path, config: PrepareConfig | None = None) -> Path:
    """``$MEDSSL_CACHE_DIR`` (or ``~/.cache/medssl``) / ``<name>-<hash>``: the hash of the
    path, and of the preprocessing settings when they are not the defaults (so caches of
    one source at two spacings live side by side instead of rebuilding each other)."""
    base = Path(os.environ.get("MEDSSL_CACHE_DIR", Path.home() / ".cache" / "medssl"))
    key = str(source.resolve())
    if config is not None and config != PrepareConfig():
        key += json.dumps(config.to_dict(), sort_keys=True)
    digest = hashlib.blake2b(key.encode(), digest_size=6).hexdigest()
    return base / f"{source.resolve().name}-{digest}"


def resolve_run_cache(data: str | Path, target_spacing: float | None) -> SliceCache:
    """The cache of a run's ``data``: a source folder is prepared at ``target_spacing``
    (``None``: the native grid); a prepared cache is used as it is, and must have been
    prepared at ``target_spacing`` when one is given.

    Raises:
        DataError: a prepared cache at another spacing (one line naming it).
    """
    config = None if target_spacing is None else PrepareConfig(target_spacing=target_spacing)
    cache = resolve_cache(data, config=config)
    have = cache.manifest.get("config", {}).get("target_spacing")
    if target_spacing is not None and have != target_spacing:
        raise DataError(
            Path(data),
            "spacing-mismatch",
            f"cache prepared at target spacing {have} mm, the run asks for {target_spacing}"
            " (give the source folder, or set target_spacing to the cache's)",
        )
    return cache


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
    out = Path(cache_dir) if cache_dir else default_cache_dir(path, config)
    log.info("preparing cache of %s in %s", path, out)
    return SliceCache.open(prepare_cache(path, out, config, progress=True).path)
