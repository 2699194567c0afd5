"""The hooks a lab plugin can implement (documented with examples in PLUGINS.md).

A plugin is any module (or object) with functions decorated by ``lab.api.hookimpl``. Each hook receives a
``register`` callback, as in simonw/llm: the core validates what is registered and records which package
registered it. Hook implementations must stay cheap: no torch, SB3, diffusers or mlflow imports here;
import those inside the factories that build models.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from lab.core.specs import RunInfo

hookspec = pluggy.HookspecMarker("lab")


@hookspec
def register_plugins(register: Callable[..., None]) -> None:
    """Register model plugins: call ``register(lab.api.Plugin(...))`` once per plugin."""


@hookspec
def register_envs(register: Callable[..., None]) -> None:
    """Register environments: call ``register(lab.api.EnvSpec(...))`` once per env or alias."""


@hookspec
def register_datasets(register: Callable[..., None]) -> None:
    """Register datasets: call ``register(lab.api.DatasetSpec(...))`` once per dataset."""


# Lifecycle hooks: third-party callbacks and loggers. Each is called in the process that runs ``lab run``, with
# exceptions isolated: a callback that raises is reported once and skipped for the rest of the run (an error
# instead under LAB_STRICT_PLUGINS=1). Implement any subset, taking any subset of the arguments.


@hookspec
def on_run_start(run: RunInfo) -> None:
    """A run was created in MLflow and its model is about to be built."""


@hookspec
def on_metrics(run: RunInfo, metrics: Mapping[str, float], step: int) -> None:
    """Metrics were logged at ``step``: the plugin's training metrics and the runner's ``eval/*``, ``best/*``."""


@hookspec
def on_checkpoint(run: RunInfo, path: Path, step: int, kind: str) -> None:
    """Model files were written to the folder ``path``: ``kind`` is ``best`` (a new best evaluation), ``checkpoint``
    (the periodic or interrupt checkpoint) or ``final`` (the last weights)."""


@hookspec
def on_run_end(run: RunInfo, status: str, summary: Mapping[str, Any]) -> None:
    """The run ended with ``status`` FINISHED, FAILED or KILLED; ``summary`` holds steps, seconds, best score and
    step, solved, and the error for FAILED runs."""
