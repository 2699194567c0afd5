"""``lab runs``: recent runs of the store, and the stale ones — RUNNING in MLflow but with their process gone.

A run is stale when it is RUNNING and either its host is this machine and its pid no longer exists, or its last
heartbeat (tag ``lab.heartbeat``, refreshed every 30 s while it trains) is older than ``stale_after`` seconds.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import asdict, dataclass
from typing import Any

STALE_AFTER_SECONDS = 600


@dataclass
class RunRow:
    run_id: str
    name: str
    plugin: str
    target: str
    status: str
    step: int | None
    age_s: float
    host: str
    pid: int | None
    heartbeat_age_s: float | None
    stale_reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def stale_reason(row: RunRow, stale_after: float) -> str | None:
    if row.status != "RUNNING":
        return None
    if row.host == socket.gethostname() and row.pid is not None and not pid_alive(row.pid):
        return f"process {row.pid} on {row.host} is gone"
    if row.heartbeat_age_s is not None and row.heartbeat_age_s > stale_after:
        return f"no heartbeat for {row.heartbeat_age_s:.0f} s (host {row.host}, pid {row.pid})"
    return None


def list_runs(limit: int, stale_after: float = STALE_AFTER_SECONDS) -> list[RunRow]:
    """The newest ``limit`` runs of every experiment, with their stale reason if any."""
    from lab.tracking import client

    mlflow_client = client()
    experiments = [e.experiment_id for e in mlflow_client.search_experiments()]
    if not experiments:
        return []
    runs = mlflow_client.search_runs(experiments, order_by=["attributes.start_time DESC"], max_results=limit)
    return [row_of(run, stale_after) for run in runs]


def row_of(run: Any, stale_after: float = STALE_AFTER_SECONDS) -> RunRow:
    """One MLflow run as a row, with its stale reason if any."""
    now = time.time()
    tags = run.data.tags
    heartbeat = tags.get("lab.heartbeat")
    row = RunRow(
        run_id=run.info.run_id, name=run.info.run_name or "", plugin=tags.get("lab.plugin", "-"),
        target=tags.get("lab.target", "-"), status=run.info.status,
        step=int(tags["lab.step"]) if tags.get("lab.step", "").isdigit() else None,
        age_s=now - run.info.start_time / 1000, host=tags.get("lab.host", "-"),
        pid=int(tags["lab.pid"]) if tags.get("lab.pid", "").isdigit() else None,
        heartbeat_age_s=now - int(heartbeat) if heartbeat and heartbeat.isdigit() else None)
    row.stale_reason = stale_reason(row, stale_after)
    return row


def clean(rows: list[RunRow]) -> list[RunRow]:
    """Mark the stale rows FAILED, with the reason as the ``lab.error`` tag; returns them."""
    from lab.tracking import client

    mlflow_client = client()
    stale = [row for row in rows if row.stale_reason]
    for row in stale:
        mlflow_client.set_tag(row.run_id, "lab.error", f"stale: {row.stale_reason} (marked by lab runs clean)")
        mlflow_client.set_terminated(row.run_id, status="FAILED")
    return stale


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def find_run(mlflow_client: Any, run_id: str) -> Any:
    """The MLflow run ``run_id``, or a one-line ConfigError naming the store."""
    from mlflow.exceptions import MlflowException

    from lab.errors import ConfigError
    from lab.tracking import tracking_uri

    try:
        return mlflow_client.get_run(run_id)
    except MlflowException:
        raise ConfigError(f"unknown run id {run_id!r} in {tracking_uri()} (see `lab runs`)") from None


def logged_config(mlflow_client: Any, run_id: str, directory: str) -> dict[str, Any]:
    """Run ``run_id``'s ``config.yaml`` (every resolved key, as logged), downloaded into ``directory``."""
    from pathlib import Path

    import yaml
    from mlflow.exceptions import MlflowException

    from lab.checkpoints import CONFIG
    from lab.errors import ConfigError

    try:
        return yaml.safe_load(Path(mlflow_client.download_artifacts(run_id, CONFIG, directory)).read_text())
    except (MlflowException, OSError):
        raise ConfigError(f"run {run_id} has no {CONFIG}: it was not made by lab run") from None
