"""Values as text, one home for each way lab writes them: in an error message (:func:`show`, clipped to one
line), as the user would type them (:func:`plain`: ``null``, ``true``), as a command-line override
(:func:`as_override`); and the nearest valid name for a typo (:func:`closest`)."""

from __future__ import annotations

import difflib
import importlib
import json
from collections.abc import Iterable
from typing import Any

MAX_SHOWN = 60  # characters of a value echoed in an error message


def plain(value: Any) -> str:
    """A value as the user writes it on the command line or in a YAML file: ``null``, ``true``, ``3``, ``[64, 64]``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def as_override(value: Any) -> str:
    """A value as a ``key=value`` override that parses back to the same value (strings and lists JSON-quoted)."""
    if isinstance(value, bool) or value is None:
        return plain(value)
    if isinstance(value, dict):  # Hydra's mapping syntax: {continuous:true,gravity:-9.8}
        return "{" + ",".join(f"{key}:{as_override(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(as_override(item) for item in value) + "]"
    return json.dumps(value) if isinstance(value, str) else repr(value)


def import_object(reference: str) -> Any:
    """The object a ``"module:attribute"`` reference names (a factory, a loader, a setup function); ImportError
    or AttributeError when it is missing, for the caller to word."""
    module_name, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def clip(text: str, limit: int = MAX_SHOWN) -> str:
    """``text`` for an error message: on one line (control characters escaped) and at most ``limit``
    characters, so that the message stays one readable line whatever was typed."""
    flat = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


def show(value: Any) -> str:
    """A value as the user would write it, for an error message (one line, clipped)."""
    if isinstance(value, str):
        return clip(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    try:
        return clip(str(value))
    except ValueError:  # str() refuses an integer of more than 4300 digits
        return f"<{type(value).__name__} too long to show>"


def closest(name: str, candidates: Iterable[str]) -> str:
    """' (did you mean X?)' for the nearest candidate, or '' when none is near."""
    candidates = list(candidates)
    lowered = {c.lower(): c for c in candidates}
    match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean {lowered[match[0]]!r}?)" if match else ""


