"""One atomic writer for every file medssl produces.

A reader (another rank, a study worker, a resumed run) sees either the old file or the
new one, never a half-written one: the data goes to a temporary file in the same
folder, is fsynced, and is renamed over the target (``os.replace`` is atomic on POSIX
and Windows). A writer that fails leaves the old file and no temporary behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_write(path: str | Path, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on a clean exit it replaces ``path``.

    For writers that take a file name (safetensors, ``torch.save``, Lightning's
    ``save_checkpoint``). The temporary is removed when the block raises.

    Args:
        path: the file to (re)place.
        fsync: flush the temporary to disk before the rename (off only for files
            that are cheap to recompute, e.g. progress markers).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        if fsync and tmp.exists():
            with tmp.open("rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | Path, data: bytes, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, fsync) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str, fsync: bool = True) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"), fsync)


def write_json(path: str | Path, data: Any, indent: int | None = 1, fsync: bool = True) -> Path:
    """Write ``data`` as JSON to ``path`` atomically (``default=str`` for paths etc.)."""
    return write_text(path, json.dumps(data, indent=indent, default=str), fsync)


def read_json(path: str | Path) -> Any:
    """Parse the JSON file ``path``."""
    return json.loads(Path(path).read_text())
