"""Checks of the tracking store made before a run exists, so that bad input is refused with one line and nothing
is created: the experiment a new run goes to, and the run ``resume=`` names.

On lab's local sqlite store they read the database read-only (never creating it, and without importing mlflow,
which costs seconds); any other store is asked through MLflow.
"""

from __future__ import annotations

import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from lab.core.errors import ConfigError
from lab.tracking.tracker import experiment_artifact_location, sqlite_path, tracking_uri


@dataclass(frozen=True)
class StoredExperiment:
    experiment_id: str
    lifecycle_stage: str
    artifact_location: str | None


def check_experiment(name: str) -> None:
    """Refuse a deleted experiment (MLflow will not log into it); warn, on one line, when an existing experiment
    keeps its artifacts somewhere other than where lab would put them."""
    experiment = find_experiment(name)
    if experiment is None:
        return
    if experiment.lifecycle_stage != "active":
        uri = tracking_uri()
        raise ConfigError(
            f"experiment {name!r} was deleted (id {experiment.experiment_id}) and MLflow logs no run into it; "
            f"restore it (MLFLOW_TRACKING_URI={uri} mlflow experiments restore --experiment-id "
            f"{experiment.experiment_id}), purge it (mlflow gc --backend-store-uri {uri} --experiment-ids "
            f"{experiment.experiment_id}), or give another experiment=")
    expected = expected_artifact_location(name)
    if expected is not None and experiment.artifact_location and experiment.artifact_location != expected:
        print(f"lab: warning: experiment {name!r} keeps its artifacts in {experiment.artifact_location}, not in "
              f"{expected}: this run's artifacts go there too", file=sys.stderr)


def expected_artifact_location(name: str) -> str | None:
    """Where lab creates an experiment's artifacts (see lab.tracking.tracker.experiment_id); None when the store
    decides."""
    return experiment_artifact_location(name)


def find_experiment(name: str) -> StoredExperiment | None:
    """Experiment ``name`` of the tracking store, deleted or not; None if there is none, no store yet, or a store
    that cannot be asked (the run then reports that as it always has)."""
    database = _local_database()
    if database is not None:
        if not database.is_file():
            return None
        rows = _query(database, "SELECT experiment_id, lifecycle_stage, artifact_location FROM experiments "
                                "WHERE name = ?", (name,))
        return StoredExperiment(str(rows[0][0]), rows[0][1], rows[0][2]) if rows else None
    from mlflow.exceptions import MlflowException

    from lab.tracking.tracker import client

    try:
        experiment = client().get_experiment_by_name(name)
    except (MlflowException, OSError):
        return None
    if experiment is None:
        return None
    return StoredExperiment(experiment.experiment_id, experiment.lifecycle_stage, experiment.artifact_location)


def check_run_exists(run: str) -> None:
    """Refuse a run id (or ``models:/`` URI) while the local store does not exist yet: there is nothing it could
    name, and asking MLflow would create the store."""
    database = _local_database()
    if database is None or database.is_file():
        return
    what = f"unknown model {run}" if run.startswith("models:/") else f"unknown run id {run!r}"
    raise ConfigError(f"{what}: there is no store at {tracking_uri()} yet (see `lab store`)")


def _local_database() -> Path | None:
    database = sqlite_path(tracking_uri())
    return None if database is None or database.name == ":memory:" else database


def _query(database: Path, sql: str, parameters: tuple[str, ...]) -> list[tuple] | None:
    """Rows of a read-only query; None where the database does not answer it (a schema lab does not know)."""
    try:
        connection = sqlite3.connect(f"file:{quote(str(database.resolve()))}?mode=ro", uri=True, timeout=20)
    except sqlite3.Error:
        return None
    try:
        return connection.execute(sql, parameters).fetchall()
    except sqlite3.Error:
        return None
    finally:
        connection.close()
