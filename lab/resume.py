"""``lab run resume=<run id>``: continue an interrupted or failed run in the same MLflow run, from its newest
checkpoint that verifies; ``resume=<checkpoint folder>`` starts a new run from a checkpoint folder.

Only the budget and how the run is executed may change (``steps``, ``progress``, ``device``, ``threads``,
``nproc``): any other key that differs from the logged params is refused with the list of differences. Files
that load by unpickling (SB3 zips, replay buffers) are loaded only from the user's own tracking store, or with
``trust=true``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lab.checkpoints import CHECKPOINTS, CONFIG, CheckpointError, pickled_files, verify_checkpoint
from lab.config import resolve
from lab.errors import ConfigError
from lab.registry import Registry

CHANGEABLE = ("steps", "progress", "device", "threads", "nproc")
RESUME_KEYS = ("resume", "trust")  # lab run's own keys, never logged


@dataclass
class ResumePoint:
    """Where a resumed run starts: the checkpoint, and what the runner had logged before it."""

    checkpoint: Path
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


def prepare(registry: Registry, cli: dict[str, Any], workdir: Path) -> tuple[Any, ResumePoint]:
    """The resolved config and the resume point of ``cli['resume']`` (a run id or a checkpoint folder)."""
    target = str(cli.pop("resume"))
    trust = cli.pop("trust", False)
    if not isinstance(trust, bool):
        raise ConfigError(f"trust={trust}: expected true or false")
    if "config" in cli:
        raise ConfigError("config= does not go with resume=: a resumed run keeps its logged config")
    folder = Path(target)
    if folder.is_dir():
        return _from_folder(registry, folder, cli, trust)
    if "/" in target or target.startswith("."):
        raise ConfigError(f"resume={target}: no such checkpoint folder (give a run id or a checkpoint folder)")
    return _from_run(registry, target, cli, workdir)


def _from_folder(registry: Registry, folder: Path, cli: dict[str, Any], trust: bool) -> tuple[Any, ResumePoint]:
    try:
        step = verify_checkpoint(folder)
    except CheckpointError as e:
        raise ConfigError(f"resume={folder}: {e}") from None
    pickled = pickled_files(folder)
    if pickled and not trust:  # checked before anything is loaded: nothing from the folder executes
        raise ConfigError(f"resume={folder}: {', '.join(pickled)} load by unpickling, which can run code from "
                          "whoever made the file; add trust=true only if you trust its source")
    if not (folder / CONFIG).is_file():
        raise ConfigError(f"resume={folder}: the folder has no {CONFIG} (not a lab checkpoint)")
    logged = yaml.safe_load((folder / CONFIG).read_text())
    config = _config(registry, logged, cli)
    return config, ResumePoint(checkpoint=folder, step=_budget_check(config, step))


def _from_run(registry: Registry, run_id: str, cli: dict[str, Any], workdir: Path) -> tuple[Any, ResumePoint]:
    from mlflow.exceptions import MlflowException

    from lab.runs import find_run, logged_config, row_of
    from lab.tracking import client

    mlflow_client = client()
    run = find_run(mlflow_client, run_id)
    if run.info.status == "RUNNING" and not row_of(run).stale_reason:
        raise ConfigError(f"run {run_id} is still RUNNING (pid {run.data.tags.get('lab.pid')} on "
                          f"{run.data.tags.get('lab.host')}); if its process is gone, `lab runs clean` first")
    config = _config(registry, logged_config(mlflow_client, run_id, str(workdir)), cli)
    checkpoint, step, names = _newest_checkpoint(mlflow_client, run_id, workdir)
    point = ResumePoint(checkpoint=checkpoint, step=_budget_check(config, step), run_id=run_id,
                        checkpoints=[name for name in names if int(name.rsplit("-", 1)[1]) <= step])
    point.best_score = run.data.metrics.get("best/score")
    best_step = run.data.tags.get("lab.best_step", "")
    point.best_step = int(best_step) if best_step.isdigit() else None
    if point.best_step is not None:
        try:
            point.best_model = Path(mlflow_client.download_artifacts(run_id, "model/best", str(workdir)))
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


def _newest_checkpoint(mlflow_client: Any, run_id: str, workdir: Path) -> tuple[Path, int, list[str]]:
    """The newest checkpoint of the run that verifies (a corrupt one is skipped for the one before it), its step,
    and the names of all the run's checkpoints, oldest first."""
    folders = sorted((a.path for a in mlflow_client.list_artifacts(run_id, CHECKPOINTS) if a.is_dir),
                     key=lambda path: int(path.rsplit("-", 1)[1]), reverse=True)
    names = [path.rsplit("/", 1)[1] for path in reversed(folders)]
    problems = []
    for path in folders:
        local = Path(mlflow_client.download_artifacts(run_id, path, str(workdir / "resume")))
        try:
            return local, verify_checkpoint(local), names
        except CheckpointError as e:
            problems.append(str(e))
            shutil.rmtree(local, ignore_errors=True)
    detail = f" ({'; '.join(problems)})" if problems else ""
    raise ConfigError(f"run {run_id} has no checkpoint to resume from{detail}; checkpoints are written on "
                      "Ctrl-C/SIGTERM and every checkpoint_every steps")
