"""MLflow tracking: the store, one run's lifecycle, and batched metric logging.

The default store is ``sqlite:///mlflow/mlflow.db`` in the working directory with artifacts under
``mlflow/artifacts/``; ``MLFLOW_TRACKING_URI`` wins when set. Runs are driven through ``MlflowClient``
rather than the fluent API so lab alone decides the final status (FINISHED, FAILED or KILLED).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient

STORE_DIR = Path("mlflow")
MAX_METRICS_PER_BATCH = 1000  # MLflow's limit for one log_batch call
MAX_PARAMS_PER_BATCH = 100
FLUSH_SECONDS = 10.0  # send buffered metrics at least this often, so the UI shows live curves


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the sqlite store under ./mlflow/."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(STORE_DIR / 'mlflow.db').resolve()}"


def default_artifact_root() -> str | None:
    """Artifacts of a sqlite store live in ``artifacts/`` beside its database file (./mlflow/artifacts for the
    default store). MLflow's own default would be ./mlruns in whatever folder a command runs from. Servers
    (http://...) and other databases keep their own artifact store."""
    database = sqlite_path(tracking_uri())
    return None if database is None else (database.parent / "artifacts").resolve().as_uri()


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, None for any other store."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def quiet_mlflow() -> None:
    """MLflow's INFO lines (creating and migrating database tables) and download progress bars are not lab's
    output; warnings and errors still show. Set before mlflow is imported here or in a child process."""
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Serialise first use of a local sqlite database (the MLflow store, optuna.db beside it): concurrent schema
    creation crashes MLflow and Optuna alike."""
    db = sqlite_path(uri)
    if db is None:
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.parent / ".lab-store.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def client() -> MlflowClient:
    """A client on the tracking store, creating the store (serialised across processes) if needed."""
    quiet_mlflow()
    from mlflow import MlflowClient

    uri = tracking_uri()
    with store_lock(uri):
        mlflow_client = MlflowClient(tracking_uri=uri)
        mlflow_client.search_experiments(max_results=1)  # forces schema creation under the lock
    return RetryingClient(mlflow_client)  # type: ignore[return-value]


RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0)  # about 20 s in all


class RetryingClient:
    """An MlflowClient whose calls are retried while sqlite answers "database is locked" (many `lab run`
    processes writing to one store at once); any other error is raised at once."""

    def __init__(self, mlflow_client: Any) -> None:
        self._client = mlflow_client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            for delay in RETRY_DELAYS:
                try:
                    return attribute(*args, **kwargs)
                except Exception as e:
                    if "database is locked" not in str(e):
                        raise
                    time.sleep(delay)
            return attribute(*args, **kwargs)

        return call


def experiment_id(mlflow_client: MlflowClient, name: str) -> str:
    """The id of experiment ``name``, created on first use (tolerating a concurrent creator)."""
    from mlflow.exceptions import MlflowException

    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    root = default_artifact_root()
    location = f"{root}/{name}" if root else None
    try:
        return mlflow_client.create_experiment(name, artifact_location=location)
    except MlflowException:
        experiment = mlflow_client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def git_commit(cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def host_tags() -> dict[str, str]:
    return {"lab.host": socket.gethostname(), "lab.pid": str(os.getpid())}


class Tracker:
    """One MLflow run: params, tags, buffered metrics, artifacts and the final status."""

    def __init__(self, mlflow_client: MlflowClient, run_id: str) -> None:
        self.client = mlflow_client
        self.run_id = run_id
        self._buffer: list[Any] = []
        self._last_flush = time.monotonic()

    @classmethod
    def start(cls, experiment: str, run_name: str | None, tags: Mapping[str, str]) -> Tracker:
        mlflow_client = client()
        run = mlflow_client.create_run(experiment_id(mlflow_client, experiment), run_name=run_name,
                                       tags=dict(tags))
        return cls(mlflow_client, run.info.run_id)

    @classmethod
    def resume(cls, run_id: str, tags: Mapping[str, str]) -> Tracker:
        """Reopen a stopped run (``resume=``): RUNNING again, with this process's tags."""
        mlflow_client = client()
        mlflow_client.update_run(run_id, status="RUNNING")
        tracker = cls(mlflow_client, run_id)
        tracker.set_tags(tags)
        return tracker

    @property
    def experiment(self) -> str:
        run = self.client.get_run(self.run_id)
        return self.client.get_experiment(run.info.experiment_id).name

    @property
    def run_name(self) -> str:
        return self.client.get_run(self.run_id).info.run_name

    @property
    def artifact_uri(self) -> str:
        return self.client.get_run(self.run_id).info.artifact_uri

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(key, _param_value(value)) for key, value in params.items()]
        for i in range(0, len(items), MAX_PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=items[i:i + MAX_PARAMS_PER_BATCH])

    def set_tags(self, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(key, str(value)) for key, value in tags.items()]
        for i in range(0, len(items), MAX_PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, tags=items[i:i + MAX_PARAMS_PER_BATCH])

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Buffer metrics; they are sent in batches of up to 1000 (one call costs as much as one metric)."""
        from mlflow.entities import Metric

        timestamp = int(time.time() * 1000)
        self._buffer.extend(Metric(key, float(value), timestamp, int(step)) for key, value in metrics.items())
        if len(self._buffer) >= MAX_METRICS_PER_BATCH or time.monotonic() - self._last_flush > FLUSH_SECONDS:
            self.flush()

    def log_metric_rows(self, rows: list[list[Any]]) -> None:
        """Buffer metrics given as [key, value, timestamp_ms, step] rows (from the tracking worker)."""
        from mlflow.entities import Metric

        self._buffer.extend(Metric(key, float(value), int(timestamp), int(step))
                            for key, value, timestamp, step in rows)
        if len(self._buffer) >= MAX_METRICS_PER_BATCH or time.monotonic() - self._last_flush > FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        while self._buffer:
            batch, self._buffer = self._buffer[:MAX_METRICS_PER_BATCH], self._buffer[MAX_METRICS_PER_BATCH:]
            self.client.log_batch(self.run_id, metrics=batch)
        self._last_flush = time.monotonic()

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        else:
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_image(self, path: Path, key: str, step: int) -> None:
        """A picture at a training step: MLflow's time-stepped images, shown with a step slider in the UI."""
        from PIL import Image

        with Image.open(path) as image:
            self.client.log_image(self.run_id, image.convert("RGB"), key=key, step=step)

    def log_dataset(self, name: str, digest: str, source: str, profile: str, context: str = "training") -> None:
        """Record a dataset as an MLflow dataset input of the run (shown in the UI's Datasets column)."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        dataset = Dataset(name=name, digest=digest, source_type="code", source=source, profile=profile)
        self.client.log_inputs(self.run_id, datasets=[
            DatasetInput(dataset, tags=[InputTag("mlflow.data.context", context)])])

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)

    def delete_artifacts(self, artifact_path: str) -> None:
        """Remove an artifact folder (old checkpoints); stores that cannot delete keep it."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        with contextlib.suppress(NotImplementedError):
            get_artifact_repository(self.artifact_uri).delete_artifacts(artifact_path)

    def finish(self, status: str) -> None:
        """Flush metrics and mark the run FINISHED, FAILED or KILLED."""
        try:
            self.flush()
        finally:
            self.client.set_terminated(self.run_id, status=status)


def _param_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
