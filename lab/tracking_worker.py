"""Tracking off the training path: a child process owns the MLflow run while the parent trains.

Importing mlflow and opening a sqlite store cost about two seconds, and every log call some milliseconds; on a
two-core laptop that is several percent of a short run. ``RemoteTracker`` starts ``python -m lab.tracking_worker``
at once, so the import overlaps the parent's torch import and model building, and sends it JSON lines on a
pipe; the worker drives an in-process :class:`lab.tracking.Tracker`. Calls that return nothing are sent
without waiting; ``start`` is answered lazily, artifact calls and ``finish`` are waited for (files must not
vanish before they are copied). The worker runs in its own session, so a Ctrl-C meant for training never
kills it; if the parent dies without finishing, the worker marks the run FAILED instead of leaving it RUNNING.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

SYNC_OPS = {"artifact", "curve", "delete", "finish", "pyfunc"}
SEND_EVERY_POINTS = 1000  # one message per MLflow batch
SEND_EVERY_SECONDS = 5.0  # so the UI shows live curves even when metrics come slowly


class TrackingError(RuntimeError):
    """The tracking worker reported an error or died."""


class RemoteTracker:
    """The parent's handle on the worker; the same methods as lab.tracking.Tracker."""

    def __init__(self) -> None:
        from lab.tracking import quiet_mlflow

        quiet_mlflow()  # the worker inherits the setting
        self._process = subprocess.Popen(
            [sys.executable, "-m", "lab.tracking_worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, start_new_session=True, bufsize=1,
        )
        self._lock = threading.Lock()
        self._run: dict[str, Any] | None = None
        self._start_pending = False
        self._buffer: list[list[Any]] = []
        self._last_send = time.monotonic()

    # -------------------------------------------------------------------------------------- plumbing

    def _send(self, op: str, **payload: Any) -> None:
        assert self._process.stdin is not None
        try:
            with self._lock:  # the heartbeat thread sends too: one whole line at a time
                self._process.stdin.write(json.dumps({"op": op, **payload}) + "\n")
                self._process.stdin.flush()
        except BrokenPipeError:
            raise TrackingError(f"the tracking worker exited (code {self._process.poll()})") from None

    def _reply(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise TrackingError(f"the tracking worker exited (code {self._process.wait()})")
        reply = json.loads(line)
        if reply.get("error"):
            raise TrackingError(reply["error"])
        return reply

    def _call(self, op: str, **payload: Any) -> dict[str, Any]:
        self._send(op, **payload)
        self._take_start_reply()
        return self._reply()

    def _take_start_reply(self) -> None:
        if self._start_pending:
            self._start_pending = False
            self._run = self._reply()

    # -------------------------------------------------------------------------------------- the Tracker API

    def start(self, experiment: str, run_name: str | None, tags: Mapping[str, str]) -> None:
        self._send("start", experiment=experiment, run_name=run_name, tags=dict(tags))
        self._start_pending = True

    def resume(self, run_id: str, tags: Mapping[str, str]) -> None:
        self._send("resume", run_id=run_id, tags=dict(tags))
        self._start_pending = True

    def _info(self, key: str) -> str:
        self._take_start_reply()
        assert self._run is not None, "start() was not called"
        return self._run[key]

    @property
    def run_id(self) -> str:
        return self._info("run_id")

    @property
    def run_name(self) -> str:
        return self._info("run_name")

    @property
    def artifact_uri(self) -> str:
        return self._info("artifact_uri")

    @property
    def experiment(self) -> str:
        return self._info("experiment")

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._send("params", params={key: _plain(value) for key, value in params.items()})

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self._send("tags", tags={key: str(value) for key, value in tags.items()})

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        timestamp = int(time.time() * 1000)
        self._buffer.extend([key, float(value), timestamp, int(step)] for key, value in metrics.items())
        if len(self._buffer) >= SEND_EVERY_POINTS or time.monotonic() - self._last_send > SEND_EVERY_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self._send("metrics", metrics=self._buffer)
            self._buffer = []
        self._last_send = time.monotonic()

    def log_text(self, text: str, artifact_file: str) -> None:
        self._send("text", text=text, artifact_file=artifact_file)

    def log_dataset(self, name: str, digest: str, source: str, profile: str) -> None:
        self._send("dataset", name=name, digest=digest, source=source, profile=profile)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self.flush()
        self._call("artifact", path=str(path), artifact_path=artifact_path)

    def delete_artifacts(self, artifact_path: str) -> None:
        self._call("delete", artifact_path=artifact_path)

    def log_image(self, path: Path, key: str, step: int) -> None:
        """Log a PNG as an MLflow image at ``step`` (the UI's step slider); the file must live until finish()."""
        self._send("image", path=str(path), key=key, step=int(step))

    def log_learning_curve(self, evaluations: list[tuple[int, Mapping[str, float]]], score_key: str,
                           target: float | None) -> None:
        self.flush()
        self._call("curve", evaluations=evaluations, score_key=score_key, target=target)

    def log_pyfunc(self, weights: Path, config_text: str, examples: Path, requirements: list[str]) -> None:
        """Log ``weights`` as the run's MLflow pyfunc model (lab.pyfunc), signature from the example files."""
        self.flush()
        self._call("pyfunc", weights=str(weights), config_text=config_text, examples=str(examples),
                   requirements=requirements)

    def finish(self, status: str) -> None:
        self.flush()
        try:
            self._call("finish", status=status)
        except BaseException:
            self.close()
            raise
        # The run is complete in the store: let the worker shut its libraries down without waiting for it.
        self.close(wait=False)

    def close(self, wait: bool = True) -> None:
        """Let the worker go (it marks an unfinished run FAILED) and, by default, reap it."""
        if self._process.stdin and not self._process.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self._process.stdin.close()
        if not wait:
            return
        try:
            self._process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._process.kill()


def _plain(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | type(None) | list) else str(value)


# ------------------------------------------------------------------------------------------ the worker


def serve(requests: IO[str], replies: IO[str]) -> None:
    """Apply the parent's requests to an in-process Tracker until ``finish`` or end of input."""
    import mlflow  # noqa: F401 - the expensive import, done while the parent is still starting up

    from lab.tracking import Tracker

    tracker: Tracker | None = None
    deferred_error: str | None = None

    def reply(**payload: Any) -> None:
        replies.write(json.dumps(payload) + "\n")
        replies.flush()

    for line in requests:
        request = json.loads(line)
        op = request.pop("op")
        try:
            if op in ("start", "resume"):
                if op == "start":
                    tracker = Tracker.start(request["experiment"], request["run_name"], request["tags"])
                else:
                    tracker = Tracker.resume(request["run_id"], request["tags"])
                reply(run_id=tracker.run_id, run_name=tracker.run_name, artifact_uri=tracker.artifact_uri,
                      experiment=tracker.experiment)
                _preload_plotting()  # while the parent trains, so the learning curve is quick at the end
                continue
            assert tracker is not None, f"{op} before start"
            _apply(tracker, op, request)
            if op in SYNC_OPS:
                reply(error=deferred_error)
                deferred_error = None
            if op == "finish":
                return
        except Exception as e:  # reported to the parent at its next synchronous call
            message = f"{op}: {type(e).__name__}: {e}"
            if op in ("start", "resume") or op in SYNC_OPS:
                reply(error=message)
            else:
                deferred_error = deferred_error or message
    if tracker is not None:  # the parent went away without finishing: never leave the run RUNNING
        tracker.set_tags({"lab.error": "the lab process exited before finishing the run"})
        tracker.finish("FAILED")


def _preload_plotting() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401


def _apply(tracker: Any, op: str, request: dict[str, Any]) -> None:
    if op == "params":
        tracker.log_params(request["params"])
    elif op == "tags":
        tracker.set_tags(request["tags"])
    elif op == "metrics":
        tracker.log_metric_rows(request["metrics"])
    elif op == "dataset":
        tracker.log_dataset(request["name"], request["digest"], request["source"], request["profile"])
    elif op == "text":
        tracker.log_text(request["text"], request["artifact_file"])
    elif op == "artifact":
        tracker.log_artifact(Path(request["path"]), request["artifact_path"])
    elif op == "delete":
        tracker.delete_artifacts(request["artifact_path"])
    elif op == "image":
        tracker.log_image(Path(request["path"]), request["key"], request["step"])
    elif op == "curve":
        import tempfile

        from lab.plots import plot_learning_curve

        with tempfile.TemporaryDirectory(prefix="lab-curve-") as tmp:
            path = plot_learning_curve(request["evaluations"], request["score_key"], request["target"],
                                       Path(tmp) / "learning_curve.png")
            tracker.log_artifact(path)
    elif op == "pyfunc":
        import tempfile

        from lab import pyfunc

        with tempfile.TemporaryDirectory(prefix="lab-pyfunc-") as tmp:
            folder = Path(tmp) / "pyfunc"
            pyfunc.save(folder, Path(request["weights"]), request["config_text"], Path(request["examples"]),
                        request["requirements"])
            tracker.log_artifact(folder, pyfunc.PYFUNC_MODEL)
    elif op == "finish":
        tracker.finish(request["status"])
    else:
        raise ValueError(f"unknown request {op!r}")


def main() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and then finishes the run
    replies, sys.stdout = sys.stdout, sys.stderr  # keep stray prints off the reply channel
    serve(sys.stdin, replies)


if __name__ == "__main__":
    main()
