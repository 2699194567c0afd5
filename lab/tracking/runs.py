"""``lab runs``: recent runs of the store, and the stale ones — RUNNING in MLflow but with their process gone.

A run is stale when it is RUNNING and either its host is this machine and its pid no longer exists, or its last
heartbeat (tag ``lab.heartbeat``, refreshed every 30 s while it trains) is older than ``stale_after`` seconds.
"""

from __future__ import annotations

import math
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

STALE_AFTER_SECONDS = 600
T = TypeVar("T")


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
    local = _local_rows(limit, stale_after)
    if local is not None:
        return local
    from lab.tracking.tracker import client

    mlflow_client = client()
    experiments = [e.experiment_id for e in mlflow_client.search_experiments()]
    if not experiments:
        return []
    runs = mlflow_client.search_runs(experiments, order_by=["attributes.start_time DESC"], max_results=limit)
    return [row_of(run, stale_after) for run in runs]


def row_of(run: Any, stale_after: float = STALE_AFTER_SECONDS) -> RunRow:
    """One MLflow run as a row, with its stale reason if any."""
    metric_steps = [metric.step for metric in getattr(run.data, "_metric_objs", ())]  # the latest of each key
    return _row(run.info.run_id, run.info.run_name, run.info.status, run.info.start_time, run.data.tags, stale_after,
                max(metric_steps, default=None))


def _row(run_id: str, name: str | None, status: str, start_time_ms: int | None, tags: Mapping[str, str],
         stale_after: float, metric_step: int | None = None) -> RunRow:
    now = time.time()
    heartbeat = tags.get("lab.heartbeat")
    row = RunRow(
        run_id=run_id, name=name or "", plugin=tags.get("lab.plugin", "-"),
        target=tags.get("lab.target", "-"), status=status, step=_step(tags, metric_step),
        age_s=now - (start_time_ms or 0) / 1000, host=tags.get("lab.host", "-"),
        pid=int(tags["lab.pid"]) if tags.get("lab.pid", "").isdigit() else None,
        heartbeat_age_s=now - int(heartbeat) if heartbeat and heartbeat.isdigit() else None)
    row.stale_reason = stale_reason(row, stale_after)
    return row


def _step(tags: Mapping[str, str], metric_step: int | None) -> int | None:
    """How far the run got: its ``lab.step`` tag (set at its end, and by the heartbeat every 30 s), or the step of
    its newest metric when that is further (a run killed -9 between heartbeats, before its first)."""
    tagged = int(tags["lab.step"]) if tags.get("lab.step", "").isdigit() else None
    known = [step for step in (tagged, metric_step) if step is not None]
    return max(known) if known else None


# ------------------------------------------------------------------------------ reading a local store directly
#
# Listing runs and reading one run's config, best score and model need neither mlflow's import (3-4 s) nor its
# store object (2 s: sqlalchemy models, a schema check): on the local sqlite store lab reads those few columns
# of MLflow's tables (runs, experiments, tags, latest_metrics: unchanged since MLflow 1.x) and the artifacts
# folder itself. Anything else (a server, another database, artifacts elsewhere, a schema that does not
# answer) goes through MlflowClient as before.

ROW_TAGS = ("lab.plugin", "lab.target", "lab.step", "lab.host", "lab.pid", "lab.heartbeat")


@dataclass(frozen=True)
class StoredRun:
    """What ``lab eval`` and ``lab play`` read of a run of the local store."""

    run_id: str
    metrics: dict[str, float]
    artifacts: Path
    """The run's artifact folder (its ``config.yaml``, ``model/best``, ...)."""


def _local_rows(limit: int, stale_after: float) -> list[RunRow] | None:
    """:func:`list_runs` read from the local sqlite store; None where that store cannot be read directly."""
    database = _local_database()
    if database is None:
        return None
    if not database.is_file():  # no store yet, so no runs (and listing them creates none)
        return []

    def read(store: sqlite3.Connection) -> list[RunRow]:
        runs = store.execute(
            "SELECT r.run_uuid, r.name, r.status, r.start_time FROM runs r "
            "JOIN experiments e ON e.experiment_id = r.experiment_id "
            "WHERE r.lifecycle_stage = 'active' AND e.lifecycle_stage = 'active' "
            # MLflow's order for start_time DESC: missing times last, then the run id breaks ties
            "ORDER BY r.start_time IS NULL, r.start_time DESC, r.run_uuid LIMIT ?", (limit,)).fetchall()
        tags: dict[str, dict[str, str]] = {run[0]: {} for run in runs}
        for run_id, key, value in store.execute(
                f"SELECT run_uuid, key, value FROM tags WHERE run_uuid IN ({','.join('?' * len(runs))}) "
                f"AND key IN ({','.join('?' * len(ROW_TAGS))})", [*tags, *ROW_TAGS]):
            tags[run_id][key] = value
        steps = dict(store.execute(f"SELECT run_uuid, MAX(step) FROM latest_metrics WHERE run_uuid IN "
                                   f"({','.join('?' * len(runs))}) GROUP BY run_uuid", list(tags)).fetchall())
        return [_row(run_id, name, status, start, tags[run_id], stale_after, steps.get(run_id))
                for run_id, name, status, start in runs]

    return _read(database, read)


def stored_run(run_id: str) -> StoredRun | None:
    """Run ``run_id`` of the local sqlite store, with its latest metrics and artifact folder; None where the
    store or the run's artifacts are not local (read them through MLflow then)."""
    from lab.core.errors import ConfigError
    from lab.tracking.tracker import local_folder, tracking_uri

    database = _local_database()
    if database is None or not database.is_file():
        return None

    def read(store: sqlite3.Connection) -> StoredRun | None:
        found = store.execute("SELECT artifact_uri FROM runs WHERE run_uuid = ?", (run_id,)).fetchone()
        if found is None:
            raise ConfigError(f"unknown run id {run_id!r} in {tracking_uri()} (see `lab runs`)")
        artifacts = local_folder(found[0] or "")
        if artifacts is None:
            return None
        metrics = {key: math.nan if is_nan else float(value) for key, value, is_nan in store.execute(
            "SELECT key, value, is_nan FROM latest_metrics WHERE run_uuid = ?", (run_id,))}
        return StoredRun(run_id, metrics, artifacts)

    return _read(database, read)


def _local_database() -> Path | None:
    """The database file of the tracking store if it is a sqlite file, else None."""
    from lab.tracking.tracker import sqlite_path, tracking_uri

    database = sqlite_path(tracking_uri())
    return None if database is None or database.name == ":memory:" else database


def _read(database: Path, read: Callable[[sqlite3.Connection], T]) -> T | None:
    """``read`` on a read-only connection to ``database``; None if a query fails (a schema lab does not know)."""
    from urllib.parse import quote

    # The timeout waits out writers (many `lab run`s logging at once), as the MLflow client's retries do.
    connection = sqlite3.connect(f"file:{quote(str(database.resolve()))}?mode=ro", uri=True, timeout=20)
    try:
        return read(connection)
    except sqlite3.Error:
        return None
    finally:
        connection.close()


def clean(rows: list[RunRow]) -> list[RunRow]:
    """Mark the stale rows FAILED, with the reason as the ``lab.error`` tag; returns them."""
    from lab.tracking.tracker import check_store, client

    stale = [row for row in rows if row.stale_reason]
    if not stale:  # nothing to write: a read-only store is fine
        return []
    check_store(write=True)
    mlflow_client = client()
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

    from lab.core.errors import ConfigError
    from lab.tracking.tracker import tracking_uri

    try:
        return mlflow_client.get_run(run_id)
    except MlflowException:
        raise ConfigError(f"unknown run id {run_id!r} in {tracking_uri()} (see `lab runs`)") from None


def logged_config(mlflow_client: Any, run_id: str, directory: str) -> dict[str, Any]:
    """Run ``run_id``'s ``config.yaml`` (every resolved key, as logged), downloaded into ``directory``."""
    from pathlib import Path

    import yaml
    from mlflow.exceptions import MlflowException

    from lab.core.config import CONFIG_FILE
    from lab.core.errors import ConfigError

    try:
        return yaml.safe_load(Path(mlflow_client.download_artifacts(run_id, CONFIG_FILE, directory)).read_text())
    except (MlflowException, OSError):
        raise ConfigError(f"run {run_id} has no {CONFIG_FILE}: it was not made by lab run") from None
