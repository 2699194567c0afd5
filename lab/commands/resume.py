"""``lab run resume=<run id>``: continue an interrupted or failed run in the same MLflow run, from its newest
checkpoint that verifies; ``resume=<checkpoint folder>`` starts a new run from a checkpoint folder.

Only the budget and how the run is executed may change (``steps``, ``progress``, ``device``, ``threads``,
``nproc``): any other key that differs from the logged params is refused with the list of differences.

Nothing in a checkpoint is unpickled: lab's checkpoints are safetensors, JSON and npz. A checkpoint is copied
into a private folder first and verified there (every file against its manifest, and the manifest against the
digest the run tagged when it wrote it), so a file swapped in afterwards is never read. A checkpoint holding
pickled files (SB3 zips, replay-buffer pickles: written by earlier versions of lab) is refused.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from lab.core.config import CONFIG_FILE, resolve
from lab.core.errors import ConfigError
from lab.core.registry import Registry
from lab.training.checkpoints import (
    CHECKPOINTS,
    DIGEST_TAG,
    CheckpointError,
    ResumePoint,
    manifest_digest,
    pickled_files,
    verify_checkpoint,
)
from lab.training.runner import BEST_MODEL

CHANGEABLE = ("steps", "progress", "device", "threads", "nproc")
RESUME_KEYS = ("resume",)  # lab run's own key, never logged


def prepare(registry: Registry, cli: dict[str, Any], workdir: Path) -> tuple[Any, ResumePoint]:
    """The resolved config and the resume point of ``cli['resume']`` (a run id or a checkpoint folder)."""
    target = str(cli.pop("resume"))
    if "config" in cli:
        raise ConfigError("config= does not go with resume=: a resumed run keeps its logged config")
    folder = Path(target)
    if folder.is_dir():
        return _from_folder(registry, folder, cli, workdir)
    if "/" in target or target.startswith("."):
        raise ConfigError(f"resume={target}: no such checkpoint folder (give a run id or a checkpoint folder)")
    return _from_run(registry, target, cli, workdir)


def _from_folder(registry: Registry, folder: Path, cli: dict[str, Any], workdir: Path) -> tuple[Any, ResumePoint]:
    copy = workdir / "checkpoint"
    try:  # read from a private copy: what is checked is what is loaded
        shutil.copytree(folder, copy, symlinks=True)
    except OSError as e:
        raise ConfigError(f"resume={folder}: cannot read the folder ({e})") from None
    step = _verified(copy, f"resume={folder}")
    if not (copy / CONFIG_FILE).is_file():
        raise ConfigError(f"resume={folder}: the folder has no {CONFIG_FILE} (not a lab checkpoint)")
    try:
        logged = yaml.safe_load((copy / CONFIG_FILE).read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"resume={folder}: its {CONFIG_FILE} is not readable YAML ({type(e).__name__})") from None
    if not isinstance(logged, dict):
        raise ConfigError(f"resume={folder}: its {CONFIG_FILE} is not a mapping of keys to values")
    config = _config(registry, logged, cli)
    return config, ResumePoint(checkpoint=copy, step=_budget_check(config, step))


def _verified(folder: Path, what: str, digest: str | None = None) -> int:
    """The step of a checkpoint folder that verifies and holds nothing pickled; ConfigError otherwise."""
    if any(path.is_symlink() for path in [folder, *folder.rglob("*")]):
        raise ConfigError(f"{what}: the checkpoint holds symbolic links (not written by lab)")
    if digest is not None and (folder / "manifest.json").is_file() and manifest_digest(folder) != digest:
        raise ConfigError(f"{what}: its manifest.json does not match the sha256 the run tagged when it wrote the "
                          "checkpoint (altered after it was written)")
    pickled = pickled_files(folder)
    if pickled:  # checked before anything is loaded: nothing from the folder executes
        raise ConfigError(f"{what}: {', '.join(pickled)} load by unpickling, which can run code from whoever "
                          "made the file; lab loads none (a checkpoint of an earlier lab: start a new run)")
    try:
        return verify_checkpoint(folder)
    except CheckpointError as e:
        raise ConfigError(f"{what}: {e}") from None


def _from_run(registry: Registry, run_id: str, cli: dict[str, Any], workdir: Path) -> tuple[Any, ResumePoint]:
    from mlflow.exceptions import MlflowException

    from lab.tracking.runs import find_run, logged_config, row_of
    from lab.tracking.tracker import client

    mlflow_client = client()
    run = find_run(mlflow_client, run_id)
    if run.info.status == "RUNNING" and not row_of(run).stale_reason:
        raise ConfigError(f"run {run_id} is still RUNNING (pid {run.data.tags.get('lab.pid')} on "
                          f"{run.data.tags.get('lab.host')}); if its process is gone, `lab runs clean` first")
    config = _config(registry, logged_config(mlflow_client, run_id, str(workdir)), cli)
    checkpoint, step, names = _newest_checkpoint(mlflow_client, run, workdir)
    if checkpoint is None and run.info.status == "FINISHED":  # training it again from step 0 is a new run
        raise ConfigError(f"run {run_id} has no checkpoint to resume from; checkpoints are written on "
                          "Ctrl-C/SIGTERM and every checkpoint_every steps (start a new run, or `lab rerun`)")
    point = ResumePoint(checkpoint=checkpoint, step=_budget_check(config, step), run_id=run_id,
                        checkpoints=[name for name in names if int(name.rsplit("-", 1)[1]) <= step])
    point.best_score = run.data.metrics.get("best/score")
    best_step = run.data.tags.get("lab.best_step", "")
    point.best_step = int(best_step) if best_step.isdigit() else None
    if point.best_step is not None:
        try:
            point.best_model = Path(mlflow_client.download_artifacts(run_id, BEST_MODEL, str(workdir)))
        except (MlflowException, OSError):
            point.best_step = point.best_score = None
    score = f"eval/{config.plugin.spec.score}"
    point.evaluations = [(m.step, {config.plugin.spec.score: m.value})
                         for m in mlflow_client.get_metric_history(run_id, score) if m.step <= step]
    # A run killed outright logged past its last checkpoint; those steps are trained again, not logged again.
    point.last_logged = {key: max((m.step for m in mlflow_client.get_metric_history(run_id, key)), default=-1)
                         for key in run.data.metrics}
    return config, point


def _config(registry: Registry, logged: dict[str, Any], cli: dict[str, Any]) -> Any:
    before = resolve(registry, logged).as_dict()
    config = resolve(registry, {**logged, **cli})
    after = config.as_dict()
    changed = [f"{key}: {before[key]!r} -> {after[key]!r}" for key in after
               if key not in CHANGEABLE and after[key] != before.get(key)]
    if changed:
        raise ConfigError(f"resume cannot change logged params ({'; '.join(changed)}); "
                          f"only {', '.join(CHANGEABLE)} may change (start a new run for other values)")
    return config


def _budget_check(config: Any, step: int) -> int:
    if config.runner.steps <= step:
        raise ConfigError(f"steps={config.runner.steps}: the checkpoint is at step {step}; give a larger budget "
                          "to continue (e.g. steps=" + str(step * 2) + ")")
    return step


def _newest_checkpoint(mlflow_client: Any, run: Any, workdir: Path) -> tuple[Path | None, int, list[str]]:
    """The newest checkpoint of the run that verifies (a corrupt one is skipped for the one before it), its step,
    and the names of all the run's checkpoints, oldest first. A run without any checkpoint (stopped before its
    first) resumes from step 0; one whose checkpoints all fail to verify is refused."""
    run_id = run.info.run_id
    folders = sorted((a.path for a in mlflow_client.list_artifacts(run_id, CHECKPOINTS) if a.is_dir),
                     key=lambda path: int(path.rsplit("-", 1)[1]), reverse=True)
    names = [path.rsplit("/", 1)[1] for path in reversed(folders)]
    if not folders:
        return None, 0, []
    problems = []
    for path in folders:
        name = path.rsplit("/", 1)[1]
        local = Path(mlflow_client.download_artifacts(run_id, path, str(workdir / "resume")))
        try:
            return local, _verified(local, f"checkpoint {name}", _tagged_digest(run, name)), names
        except ConfigError as e:
            problems.append(str(e))
            shutil.rmtree(local, ignore_errors=True)
    raise ConfigError(f"run {run_id} has no checkpoint to resume from ({'; '.join(problems)})")


def _tagged_digest(run: Any, name: str) -> str | None:
    """The manifest digest the run tagged when it wrote checkpoint ``name`` (None for runs of older lab)."""
    tags = run.data.tags
    return tags.get(f"{DIGEST_TAG}.{name}") or (tags.get(DIGEST_TAG) if tags.get("lab.checkpoint") == name else None)
