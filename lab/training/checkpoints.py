"""Checkpoints that survive a crash: written atomically, verified by sha256, the last N kept in the run.

A checkpoint is the model's ``save()`` folder plus ``manifest.json`` (the step and each file's sha256). It is
written to a temporary folder, every file and the folder are fsynced, and only then is it renamed into place and
uploaded as the run artifact ``checkpoints/step-<N>/``; a failure on the way (a full disk) leaves the previous
checkpoints untouched. The run's tag ``lab.checkpoint`` names the newest complete checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.core.config import CONFIG_FILE

CHECKPOINTS = "checkpoints"
MANIFEST = "manifest.json"
DIGEST_TAG = "lab.checkpoint.sha256"  # the run's tag of its newest manifest's digest; ``.step-<N>`` for each kept
# Files that only load by unpickling (SB3 zips, replay buffers, torch pickles): they can run code when loaded.
PICKLED_SUFFIXES = (".zip", ".pkl", ".pickle", ".pt", ".pth", ".ckpt")


@dataclass
class ResumePoint:
    """Where a resumed run starts: the checkpoint, and what the runner had logged before it."""

    checkpoint: Path | None
    """None: the run stopped before its first checkpoint, and is trained again from step 0."""
    step: int
    run_id: str | None = None  # None: a new run started from a checkpoint folder
    best_score: float | None = None
    best_step: int | None = None
    best_model: Path | None = None
    evaluations: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    last_logged: dict[str, int] = field(default_factory=dict)
    """Each metric's last logged step: the resumed run logs only later steps (no duplicates)."""
    checkpoints: list[str] = field(default_factory=list)
    """The run's checkpoint folders, oldest first (so the newest ``checkpoint_keep`` stay across sessions)."""


class CheckpointError(RuntimeError):
    """A checkpoint could not be written or does not verify."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checkpoint(model: Any, root: Path, step: int, config_text: str = "") -> Path:
    """The model's training state (``checkpoint()``, else ``save()``) and the run's config, into
    ``root/step-<step>`` atomically, with a manifest of sha256s; returns the folder."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step}"
    temporary = root / f".step-{step}.tmp"
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        save = getattr(model, "checkpoint", None)
        (save if callable(save) else model.save)(temporary)
        if config_text:
            (temporary / CONFIG_FILE).write_text(config_text)  # a checkpoint folder alone can start a run
        files = sorted(p for p in temporary.rglob("*") if p.is_file())
        manifest = {"step": step, "files": {str(p.relative_to(temporary)): sha256_of(p) for p in files}}
        (temporary / MANIFEST).write_text(json.dumps(manifest, indent=2))
        for path in [*files, temporary / MANIFEST]:
            _fsync(path)
        _fsync(temporary)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(temporary, final)
        _fsync(root)
    except BaseException as e:
        shutil.rmtree(temporary, ignore_errors=True)
        if isinstance(e, OSError | ValueError):
            raise CheckpointError(f"the checkpoint at step {step} could not be written ({type(e).__name__}: {e}); "
                                  "the previous checkpoints are intact") from e
        raise
    return final


def verify_checkpoint(folder: Path) -> int:
    """The step of a checkpoint folder whose files all match its manifest; CheckpointError otherwise."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{folder} has no readable {MANIFEST}: {e}") from None
    for name, expected in manifest["files"].items():
        path = folder / name
        if not path.is_file() or sha256_of(path) != expected:
            raise CheckpointError(f"{folder}: {name} does not match its sha256 in {MANIFEST} (corrupt or altered)")
    return int(manifest["step"])


def manifest_digest(folder: Path) -> str:
    return sha256_of(folder / MANIFEST)


def prune(root: Path, keep: int) -> list[str]:
    """Delete all but the newest ``keep`` local checkpoints; returns the names removed."""
    folders = sorted((p for p in root.glob("step-*") if p.is_dir()), key=lambda p: int(p.name.split("-")[1]))
    removed = folders[:-keep] if keep > 0 else []
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
    return [folder.name for folder in removed]


def _fsync(path: Path) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    descriptor = os.open(path, flags)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def pickled_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.suffix.lower() in PICKLED_SUFFIXES)
