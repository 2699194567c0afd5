"""Text corpora built at run time from files that ship with Python itself."""

from __future__ import annotations

import ast
import hashlib
import sys
import sysconfig
from pathlib import Path

import numpy as np

from lab.api import Dataset, cache_dir, write_cached

MAX_CHARACTERS = 2_000_000
CORPUS_VERSION = 1  # bump when stdlib_docstrings() changes what it extracts
SPLIT = (0.90, 0.05, 0.05)  # contiguous train / validation / test slices of the corpus


def stdlib_docstrings(limit: int = MAX_CHARACTERS) -> str:
    """The docstrings of the standard library's top-level modules, classes and functions, in file order.

    Files are parsed with ``ast``, never imported, so building the corpus runs no library code.
    """
    pieces: list[str] = []
    total = 0
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                docstring = ast.get_docstring(node)
                if docstring:
                    pieces.append(docstring)
                    total += len(docstring) + 2
        if total >= limit:
            break
    return "\n\n".join(pieces)[:limit]


def cached_stdlib_docstrings() -> str:
    """:func:`stdlib_docstrings`, parsed once per Python installation (about 7 s of ``ast`` work) and then read
    from lab's cache."""
    key = hashlib.sha256(f"{CORPUS_VERSION} {sys.version} {sysconfig.get_paths()['stdlib']} {MAX_CHARACTERS}"
                         .encode()).hexdigest()[:16]
    path = cache_dir() / f"pydocs-{key}.txt"
    if path.is_file():
        return path.read_text(encoding="utf-8")
    text = stdlib_docstrings()
    write_cached(path, text.encode("utf-8"))
    return text


def pydocs() -> Dataset:
    text = cached_stdlib_docstrings()
    vocabulary = sorted(set(text))
    index = {symbol: i for i, symbol in enumerate(vocabulary)}
    ids = np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text))
    train_end = int(len(ids) * SPLIT[0])
    val_end = train_end + int(len(ids) * SPLIT[1])
    train, val, test = ids[:train_end], ids[train_end:val_end], ids[val_end:]
    return Dataset("pydocs", train, train, val, val, test, test, split_seed=0, vocabulary=vocabulary)
