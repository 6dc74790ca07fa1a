"""Content fingerprints of source files: detect any change to what a cache was built from."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def file_hash(path: Path) -> str:
    """BLAKE2b hex digest of a file's bytes."""
    h = hashlib.blake2b(digest_size=20)
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def fingerprint_files(
    root: Path, files: list[Path], previous: dict | None = None
) -> dict[str, dict]:
    """Fingerprint ``files`` as ``{relative path: {size, mtime_ns, hash}}``.

    A file whose size and modification time equal those in ``previous`` keeps its
    stored hash (so checking an unchanged source costs only ``stat`` calls); any other
    file is hashed in full.
    """
    previous = previous or {}
    out: dict[str, dict] = {}
    for f in files:
        rel = str(f.relative_to(root)) if f.is_relative_to(root) else str(f)
        st = f.stat()
        old = previous.get(rel)
        if old and old["size"] == st.st_size and old["mtime_ns"] == st.st_mtime_ns:
            out[rel] = dict(old)
        else:
            out[rel] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "hash": file_hash(f)}
    return out


def source_hash(fingerprints: dict[str, dict]) -> str:
    """One hash over all files' relative paths and content hashes (not their times)."""
    h = hashlib.blake2b(digest_size=20)
    for rel in sorted(fingerprints):
        h.update(rel.encode())
        h.update(fingerprints[rel]["hash"].encode())
    return h.hexdigest()
