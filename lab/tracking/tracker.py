"""MLflow tracking: the store, one run's lifecycle, and batched metric logging.

The default store is ``sqlite:///mlflow/mlflow.db`` in the working directory with artifacts under
``mlflow/artifacts/``; ``MLFLOW_TRACKING_URI`` wins when set. Runs are driven through ``MlflowClient``
rather than the fluent API so lab alone decides the final status (FINISHED, FAILED or KILLED).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.core.errors import StoreError
from lab.core.text import plain

if TYPE_CHECKING:
    from mlflow import MlflowClient

STORE_DIR = Path("mlflow")
MAX_METRICS_PER_BATCH = 1000  # MLflow's limit for one log_batch call
MAX_PARAMS_PER_BATCH = 100
FLUSH_SECONDS = 10.0  # send buffered metrics at least this often, so the UI shows live curves
# Tags that say why a session of a run ended: a resumed run keeps them as history (``lab.error.previous``).
SESSION_ENDINGS = ("lab.error", "lab.stopped")
UPLOADING = ".artifact.uploading."  # mlflow.store.artifact.local_artifact_repo's prefix of partial uploads


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the sqlite store under ./mlflow/."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(STORE_DIR / 'mlflow.db').resolve()}"


def default_artifact_root() -> str | None:
    """Artifacts of a sqlite store live in ``artifacts/`` beside its database file (./mlflow/artifacts for the
    default store). MLflow's own default would be ./mlruns in whatever folder a command runs from. Servers
    (http://...) and other databases keep their own artifact store."""
    database = sqlite_path(tracking_uri())
    return None if database is None else (database.parent / "artifacts").resolve().as_uri()


def experiment_artifact_location(name: str) -> str | None:
    """Where lab puts a new experiment's artifacts on a local store: one folder under the store's ``artifacts/``
    named after the experiment, with path separators replaced and a leading dot escaped, so that no name
    (``experiment=../../x``, ``a/b``) reaches outside that folder; None where the store decides."""
    root = default_artifact_root()
    if root is None:
        return None
    folder = re.sub(r"[/\\\x00]", "_", name)
    return f"{root}/{'_' + folder if folder.startswith('.') else folder}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, None for any other store."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def quiet_mlflow() -> None:
    """MLflow's INFO lines (creating and migrating database tables) and download progress bars are not lab's
    output; warnings and errors still show. Set before mlflow is imported here or in a child process."""
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # Its ERROR log of a failed query (a read-only store, a full disk) repeats, with a SQLAlchemy traceback, the
    # exception its caller gets anyway, and that lab reports in one line.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


SQLITE_HEADER = b"SQLite format 3\x00"
# What a file system answers when a store cannot be written: no permission, or mounted read-only.
READ_ONLY_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS)


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Serialise first use of a local sqlite database (the MLflow store, optuna.db beside it): concurrent schema
    creation crashes MLflow and Optuna alike. A store that exists but cannot be written is only read: nobody
    creates its schema, so it needs no lock (and could not take one)."""
    db = sqlite_path(uri)
    if db is None:
        yield
        return
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        lock = open(db.parent / ".lab-store.lock", "a")  # noqa: SIM115 - held for the block below
    except OSError as e:
        if e.errno not in READ_ONLY_ERRNOS:
            raise
        if not db.is_file():
            raise read_only(db, e) from None
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def check_store(uri: str | None = None, write: bool = False) -> None:
    """Refuse, in one line naming the file, a local sqlite store that MLflow would misread: an empty file (MLflow
    would silently make it a new, empty store and the runs it held would vanish), a file that is not a sqlite
    database, and, with ``write``, a store lab cannot write. Cheap: no mlflow import, no query; nothing is
    created where there is no store yet."""
    uri = uri or tracking_uri()
    db = sqlite_path(uri)
    if db is None or db.name == ":memory:":
        return
    if write:
        _check_writable(db)
    if db.is_file():
        with store_lock(uri):  # a store that another process is creating is judged once it is made
            check_database(db)


def check_database(db: Path) -> None:
    """StoreError unless ``db`` begins as a sqlite database does (it is not examined further)."""
    try:
        with db.open("rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except OSError as e:
        raise unreadable(db, f"{e.strerror or e}") from None
    if not header:
        artifacts = db.parent / "artifacts"
        held = f" (the artifacts of its runs are in {artifacts})" if artifacts.is_dir() else ""
        raise StoreError(f"{db} is empty (0 bytes): it is not an MLflow store, and lab will not make it a new, "
                         f"empty one, since the runs it held would be lost{held}; restore it from a backup, or "
                         f"move it aside (mv {db} {db}.empty) to start a new store")
    if header != SQLITE_HEADER:
        raise unreadable(db, "file is not a database")


def unreadable(db: Path, reason: str) -> StoreError:
    return StoreError(f"{db} is not a readable MLflow store ({reason}); restore it from a backup, or move it "
                      f"aside (mv {db} {db}.bad) to start a new store")


def read_only(db: Path, error: OSError | str) -> StoreError:
    reason = error if isinstance(error, str) else (error.strerror or str(error))
    return StoreError(f"the tracking store {db} is read-only ({reason}): lab runs, eval, play and sample read it, "
                      "but nothing can be recorded there; make it writable, or set MLFLOW_TRACKING_URI to "
                      "another store")


def _check_writable(db: Path) -> None:
    """StoreError when a new run could not be recorded: the database, its folder (sqlite's journal) or the
    artifacts folder beside it cannot be written. Probed by trying, as permissions alone do not tell (root,
    read-only mounts, ACLs)."""
    folders = [folder for folder in (db.parent, db.parent / "artifacts") if folder.is_dir()]
    try:
        if db.is_file():
            os.close(os.open(db, os.O_RDWR))
        for folder in folders:
            with tempfile.TemporaryFile(dir=folder):
                pass
    except OSError as e:
        if e.errno in READ_ONLY_ERRNOS:
            raise read_only(db, e) from None
        raise StoreError(f"the tracking store {db} cannot be written ({e.strerror or e}): nothing can be "
                         "recorded there until it can") from None


def store_fault(error: BaseException, uri: str | None = None) -> StoreError | None:
    """The StoreError that an MLflow or sqlite error means, if it is a fault of the store itself (read-only,
    not a database) rather than of one request."""
    db = sqlite_path(uri or tracking_uri())
    if db is None:
        return None
    message = str(error)
    if "readonly database" in message or "read-only file system" in message.lower():
        return read_only(db, "attempt to write a readonly database")
    for reason in ("file is not a database", "database disk image is malformed"):
        if reason in message:
            return unreadable(db, reason)
    return None


def client() -> MlflowClient:
    """A client on the tracking store, creating the store (serialised across processes) if needed; a store that
    MLflow would misread or cannot open is refused in one line (StoreError)."""
    quiet_mlflow()
    from mlflow import MlflowClient

    uri = tracking_uri()
    database = sqlite_path(uri)
    with store_lock(uri):
        if database is not None and database.is_file():  # under the lock: never judged half-made
            check_database(database)
        try:
            mlflow_client = MlflowClient(tracking_uri=uri)
            mlflow_client.search_experiments(max_results=1)  # forces schema creation under the lock
        except Exception as e:
            fault = store_fault(e, uri)
            if fault is None:
                raise
            raise fault from None
    return RetryingClient(mlflow_client)  # type: ignore[return-value]


RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0)  # about 20 s in all


class RetryingClient:
    """An MlflowClient whose calls are retried while sqlite answers "database is locked" (many `lab run`
    processes writing to one store at once); a fault of the store itself (read-only, corrupt) is raised as a
    one-line StoreError, any other error at once."""

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
                        fault = store_fault(e)
                        if fault is None:
                            raise
                        raise fault from None
                    time.sleep(delay)
            return attribute(*args, **kwargs)

        return call


def experiment_id(mlflow_client: MlflowClient, name: str) -> str:
    """The id of experiment ``name``, created on first use (tolerating a concurrent creator)."""
    from mlflow.exceptions import MlflowException

    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return mlflow_client.create_experiment(name, artifact_location=experiment_artifact_location(name))
    except MlflowException:
        experiment = mlflow_client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def local_folder(uri: str) -> Path | None:
    """The folder of a ``file:`` artifact URI (or a plain absolute path); None for any other artifact store."""
    from urllib.parse import unquote, urlparse
    from urllib.request import url2pathname

    parsed = urlparse(uri)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return Path(url2pathname(unquote(parsed.path)))
    if not parsed.scheme and Path(uri).is_absolute():
        return Path(uri)
    return None


class Tracker:
    """One MLflow run: params, tags, buffered metrics, artifacts and the final status. In ``lab run`` it lives in the
    tracking worker, which calls it as ``lab.tracking.worker.OPS`` says."""

    def __init__(self, mlflow_client: MlflowClient, run_id: str) -> None:
        self.client = mlflow_client
        self.run_id = run_id
        self._buffer: list[Any] = []
        self._last_flush = time.monotonic()
        self._artifact_uri: str | None = None

    @classmethod
    def start(cls, experiment: str, run_name: str | None, tags: Mapping[str, str]) -> Tracker:
        mlflow_client = client()
        run = mlflow_client.create_run(experiment_id(mlflow_client, experiment), run_name=run_name,
                                       tags=dict(tags))
        return cls(mlflow_client, run.info.run_id)

    @classmethod
    def resume(cls, run_id: str, tags: Mapping[str, str]) -> Tracker:
        """Reopen a stopped run (``resume=``): RUNNING again, with this process's tags. Why the last session
        ended (``lab.error``, ``lab.stopped``) becomes history (``<tag>.previous``), so that a resumed run that
        finishes carries no error it no longer has."""
        mlflow_client = client()
        old = mlflow_client.get_run(run_id).data.tags
        mlflow_client.update_run(run_id, status="RUNNING")
        tracker = cls(mlflow_client, run_id)
        history = {f"{key}.previous": old[key] for key in SESSION_ENDINGS if key in old}
        tracker.set_tags({**history, **tags})
        for key in SESSION_ENDINGS:
            if key in old:
                mlflow_client.delete_tag(run_id, key)
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
        if self._artifact_uri is None:  # fixed when the run is created
            self._artifact_uri = self.client.get_run(self.run_id).info.artifact_uri
        return self._artifact_uri

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(key, plain(value)) for key, value in params.items()]
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
        """Write the buffered metrics; a batch leaves the buffer only once it is in the store, so a failed write
        (a full disk) is tried again at the next flush and at finish()."""
        while self._buffer:
            self.client.log_batch(self.run_id, metrics=self._buffer[:MAX_METRICS_PER_BATCH])
            del self._buffer[:MAX_METRICS_PER_BATCH]
        self._last_flush = time.monotonic()

    @property
    def unsaved_metrics(self) -> int:
        return len(self._buffer)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        """Upload a file or a folder. A folder lands whole or not at all: a failure on the way (a full disk)
        leaves no partial file in the run (MLflow copies a folder file by file, in place)."""
        if not path.is_dir():
            self.client.log_artifact(self.run_id, str(path), artifact_path)  # MLflow stages a file atomically
            return
        root = local_folder(self.artifact_uri)
        if root is not None:
            copy_folder_atomically(path, root / artifact_path if artifact_path else root)
            return
        fresh = not artifact_path or not self.client.list_artifacts(self.run_id, artifact_path)
        try:
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        except BaseException:
            if fresh and artifact_path:  # what was uploaded of it is incomplete
                with contextlib.suppress(Exception):
                    self.delete_artifacts(artifact_path)
            raise

    def log_learning_curve(self, evaluations: list[tuple[int, Mapping[str, float]]], score_key: str,
                           target: float | None) -> None:
        """The evaluations' ``score_key`` against the step, ``target`` as a line: learning_curve.png in the run."""
        from lab.tracking.plots import plot_learning_curve

        with tempfile.TemporaryDirectory(prefix="lab-curve-") as tmp:
            self.log_artifact(plot_learning_curve(evaluations, score_key, target, Path(tmp) / "learning_curve.png"))

    def log_pyfunc(self, weights: Path, config_text: str, examples: Path, requirements: list[str]) -> None:
        """``weights`` as the run's MLflow pyfunc model (lab.tracking.pyfunc), signature from the example files."""
        from lab.tracking import pyfunc

        with tempfile.TemporaryDirectory(prefix="lab-pyfunc-") as tmp:
            folder = Path(tmp) / "pyfunc"
            pyfunc.save(folder, weights, config_text, examples, requirements)
            self.log_artifact(folder, pyfunc.PYFUNC_MODEL)

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
            self.terminate(status)

    def terminate(self, status: str) -> None:
        """Mark the run FINISHED, FAILED or KILLED (buffered metrics stay buffered)."""
        self.client.set_terminated(self.run_id, status=status)


def copy_folder_atomically(source: Path, destination: Path) -> None:
    """Copy folder ``source`` into ``destination`` (made if missing, merged into if present), so that no file
    there is ever partly written: everything is copied into a staging folder beside it first, then each file is
    renamed into place. On failure the staging folder is removed and ``destination`` is as it was."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    # MLflow's prefix of uploads in progress: listings skip it, so resume never takes a half-copied checkpoint
    # (nor one a killed worker left). Not mkdtemp: its folder is private (0700) and would stay so once renamed.
    staging = destination.parent / f"{UPLOADING}{destination.name}-{os.getpid()}-{time.monotonic_ns()}"
    staging.mkdir()
    try:
        try:
            shutil.copytree(source, staging, dirs_exist_ok=True)
        except shutil.Error as e:  # its message lists every file; the first failure says it all
            source_file, _, why = e.args[0][0]
            raise OSError(f"{why} (copying {source_file})") from None
        if not destination.exists():
            os.replace(staging, destination)
            return
        for path in sorted(staging.rglob("*")):
            target = destination / path.relative_to(staging)
            if path.is_dir():
                target.mkdir(exist_ok=True)
            else:
                os.replace(path, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
