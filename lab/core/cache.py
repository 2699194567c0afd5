"""lab's cache of things that are slow to make and never change for the same inputs (a metric classifier, a text
corpus, env descriptions): ``$LAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/lab``, else ``~/.cache/lab``. Never the
working directory, and safe to delete at any time."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache folder (not created here)."""
    if os.environ.get("LAB_CACHE_DIR"):
        return Path(os.environ["LAB_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lab"


def write_cached(path: Path, data: bytes) -> None:
    """Write a cache file atomically (a temporary file renamed into place): concurrent runs never read half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
