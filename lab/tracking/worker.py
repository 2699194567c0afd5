"""Tracking off the training path: a child process owns the MLflow run while the parent trains.

Importing mlflow and opening a sqlite store cost about two seconds, and every log call some milliseconds; on a
two-core laptop that is several percent of a short run. ``RemoteTracker`` starts ``python -m lab.tracking.worker``
at once, so the import overlaps the parent's torch import and model building, and sends it JSON lines on a
pipe; the worker drives an in-process :class:`lab.tracking.tracker.Tracker`. One table, ``OPS``, is the protocol
for both ends: each operation's name on the pipe, the Tracker method it calls, whether it is answered and how its
arguments cross. Calls that return nothing are sent without waiting; ``start`` is answered lazily, artifact calls
and ``finish`` are waited for (files must not vanish before they are copied), and ``flush`` waits until every
metric sent before it is committed to the store: the worker writes its buffered metrics before any call it
answers, so a checkpoint is never recorded ahead of the metrics logged before it. The worker runs in its own
session, so a Ctrl-C meant for training never kills it; if the parent dies without finishing, the worker marks the
run FAILED instead of leaving it RUNNING, saying "crashed (signal N)" when the parent died of a fatal signal (its
faulthandler writes to a pipe the worker reads).
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from lab.core.errors import TrackingError

if TYPE_CHECKING:
    from lab.tracking.tracker import Tracker

# The worker's exit status when its parent went away without finishing the run.
MARKED_FAILED = 3  # it marked the run FAILED
NOT_MARKED = 4  # it could not (the store cannot be written): the run stays RUNNING
# faulthandler's first line names the fatal signal the parent died of.
FATAL_SIGNALS = {"Segmentation fault": signal.SIGSEGV, "Floating point exception": signal.SIGFPE,
                 "Aborted": signal.SIGABRT, "Bus error": signal.SIGBUS, "Illegal instruction": signal.SIGILL}
SEND_EVERY_POINTS = 1000  # one message per MLflow batch
SEND_EVERY_SECONDS = 5.0  # so the UI shows live curves even when metrics come slowly

Json = str | int | float | bool | None | list["Json"] | dict[str, "Json"]
"""What a message on the pipe carries."""

# ------------------------------------------------------------------------------------------ the protocol


@dataclass(frozen=True)
class Codec:
    """How one argument crosses the pipe: made JSON-plain by the parent, rebuilt for the Tracker by the worker."""

    to_wire: Callable[[Any], Json]
    from_wire: Callable[[Any], object] = lambda value: value


def _plain(value: object) -> Json:
    """A param value as JSON: scalars and lists as they are, anything else (a path, a tuple) as its text."""
    return value if isinstance(value, str | int | float | bool | type(None) | list) else str(value)


PATH = Codec(str, Path)
TAGS = Codec(lambda tags: {key: str(value) for key, value in tags.items()})
PARAMS = Codec(lambda params: {key: _plain(value) for key, value in params.items()})
STEP = Codec(int)
CURVE = Codec(lambda evaluations: [[int(step), dict(scores)] for step, scores in evaluations],
              lambda rows: [(step, scores) for step, scores in rows])


@dataclass(frozen=True)
class Op:
    """One operation of the protocol, as both ends see it."""

    name: str
    """The message's ``op``; it also begins the error the operation may cause ("artifact: OSError: ...")."""
    method: str
    """The Tracker method the worker calls with the message's arguments (start, resume: its constructors)."""
    answered: bool = False
    """The worker commits the metrics it holds, applies the call and replies; the caller waits for the reply
    (start and resume: lazily, when the run is first asked about). Else the caller goes on at once, and an error
    waits for the next answered call."""
    ordered: bool = False
    """The caller sends its buffered metrics first, so that the store never holds this ahead of them."""
    codecs: Mapping[str, Codec] = field(default_factory=dict)
    """The arguments that are not JSON as they stand, and how they cross; the others cross as they are."""

    def encode(self, arguments: Mapping[str, Any]) -> dict[str, Json]:
        return {key: self.codecs[key].to_wire(value) if key in self.codecs else value
                for key, value in arguments.items()}

    def decode(self, message: Mapping[str, Json]) -> dict[str, object]:
        return {key: self.codecs[key].from_wire(value) if key in self.codecs else value
                for key, value in message.items()}


OPS: dict[str, Op] = {op.name: op for op in (
    Op("start", "start", answered=True, codecs={"tags": TAGS}),
    Op("resume", "resume", answered=True, codecs={"tags": TAGS}),
    Op("params", "log_params", codecs={"params": PARAMS}),
    Op("tags", "set_tags", codecs={"tags": TAGS}),
    Op("metrics", "log_metric_rows"),  # [key, value, timestamp_ms, step] rows, as RemoteTracker buffers them
    Op("flush", "flush", answered=True, ordered=True),
    Op("text", "log_text"),
    Op("dataset", "log_dataset"),
    Op("artifact", "log_artifact", answered=True, ordered=True, codecs={"path": PATH}),
    Op("delete", "delete_artifacts", answered=True),
    Op("image", "log_image", codecs={"path": PATH, "step": STEP}),  # the file lives until finish
    Op("curve", "log_learning_curve", answered=True, ordered=True, codecs={"evaluations": CURVE}),
    Op("pyfunc", "log_pyfunc", answered=True, ordered=True, codecs={"weights": PATH, "examples": PATH}),
    # The last request: the worker commits what metrics it can, then terminates the run (see _finish).
    Op("finish", "terminate", answered=True, ordered=True),
)}
"""The protocol between RemoteTracker and the worker, by the name on the pipe."""
OPENING = ("start", "resume")  # answered with the run's identity: the worker makes its Tracker


class RemoteTracker:
    """The parent's handle on the worker: lab.training.reporting.RunTracker, each call sent as ``OPS`` says."""

    def __init__(self) -> None:
        from lab.tracking.tracker import quiet_mlflow

        quiet_mlflow()  # the worker inherits the setting
        crash_reader, self._crash_writer = os.pipe()  # what faulthandler says if this process dies of a signal
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "lab.tracking.worker", str(crash_reader)], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, text=True, start_new_session=True, bufsize=1, pass_fds=(crash_reader,),
            )
        finally:
            os.close(crash_reader)
        self._lock = threading.Lock()
        self._run: dict[str, Json] | None = None
        self._start_pending = False
        self._buffer: list[Json] = []
        self._last_send = time.monotonic()
        self._reporting_crashes = False
        self._faulthandler_was_enabled = False
        self.final_status: str | None = None
        """The status the run has in the store once finish() or close() returned; None while it is RUNNING."""

    # -------------------------------------------------------------------------------------- plumbing

    def _request(self, name: str, /, **arguments: Any) -> None:
        """Send operation ``name`` with ``arguments`` (its Tracker method's), as its entry in ``OPS`` says.
        (``name`` is positional only: log_dataset has an argument called name.)"""
        op = OPS[name]
        if op.ordered:
            self._send_metrics()  # the worker commits them before it applies this
        message = op.encode(arguments)
        if name in OPENING:  # its reply is taken when the run is first asked about, or before the next reply
            self._send(name, message)
            self._start_pending = True
        elif op.answered:
            self._call(name, message)
        else:
            self._send(name, message)

    def _send(self, name: str, message: Mapping[str, Json]) -> None:
        stdin = self._process.stdin
        assert stdin is not None
        with self._lock:  # the heartbeat thread sends too: one whole line at a time
            if stdin.closed:  # closed by finish() or close(), perhaps while another thread was about to send
                raise TrackingError("the tracking worker was closed")
            try:
                stdin.write(json.dumps({"op": name, **message}) + "\n")
                stdin.flush()
            except (OSError, ValueError):  # a broken pipe: the worker died
                raise TrackingError(f"the tracking worker exited (code {self._process.poll()})") from None

    def _reply(self) -> dict[str, Json]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise TrackingError(f"the tracking worker exited (code {self._process.wait()})")
        reply = json.loads(line)
        if reply.get("store_error"):  # the store itself is at fault (read-only, corrupt): one line to the user
            from lab.core.errors import StoreError

            raise StoreError(reply["store_error"])
        if reply.get("error"):
            raise TrackingError(reply["error"], applied=bool(reply.get("applied")))
        return reply

    def _call(self, name: str, message: Mapping[str, Json]) -> dict[str, Json]:
        self._send(name, message)
        self._take_start_reply()
        return self._reply()

    def _take_start_reply(self) -> None:
        if self._start_pending:
            self._start_pending = False
            self._run = self._reply()

    def _send_metrics(self) -> None:
        """Hand the buffered metrics to the worker, without waiting (it buffers them in turn)."""
        if self._buffer:
            self._request("metrics", rows=self._buffer)
            self._buffer = []
        self._last_send = time.monotonic()

    # -------------------------------------------------------------------------------------- the run's identity

    def _info(self, key: str) -> str:
        self._take_start_reply()
        assert self._run is not None, "start() was not called"
        return str(self._run[key])

    @property
    def started(self) -> bool:
        """Whether the run exists in the store (its start was answered without an error)."""
        with contextlib.suppress(Exception):  # TrackingError, or StoreError (a read-only or corrupt store)
            self._take_start_reply()
        return self._run is not None

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

    @property
    def tracking_uri(self) -> str:
        """The store this run is tracked in."""
        from lab.tracking.tracker import tracking_uri

        return tracking_uri()

    # -------------------------------------------------------------------------------------- the Tracker API

    def start(self, experiment: str, run_name: str | None, tags: Mapping[str, str]) -> None:
        self._request("start", experiment=experiment, run_name=run_name, tags=tags)

    def resume(self, run_id: str, tags: Mapping[str, str]) -> None:
        self._request("resume", run_id=run_id, tags=tags)

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._request("params", params=params)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self._request("tags", tags=tags)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        timestamp = int(time.time() * 1000)
        self._buffer.extend([key, float(value), timestamp, int(step)] for key, value in metrics.items())
        if len(self._buffer) >= SEND_EVERY_POINTS or time.monotonic() - self._last_send > SEND_EVERY_SECONDS:
            self._send_metrics()

    def flush(self) -> None:
        """Return once every metric logged so far is committed to the store: a kill -9 of both processes from
        then on loses none of them (evaluations and checkpoints flush; a round trip of a few milliseconds)."""
        self._request("flush")

    def log_text(self, text: str, artifact_file: str) -> None:
        self._request("text", text=text, artifact_file=artifact_file)

    def log_dataset(self, name: str, digest: str, source: str, profile: str) -> None:
        self._request("dataset", name=name, digest=digest, source=source, profile=profile)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self._request("artifact", path=path, artifact_path=artifact_path)

    def delete_artifacts(self, artifact_path: str) -> None:
        self._request("delete", artifact_path=artifact_path)

    def log_image(self, path: Path, key: str, step: int) -> None:
        """Log a PNG as an MLflow image at ``step`` (the UI's step slider); the file must live until finish()."""
        self._request("image", path=path, key=key, step=step)

    def log_learning_curve(self, evaluations: list[tuple[int, Mapping[str, float]]], score_key: str,
                           target: float | None) -> None:
        self._request("curve", evaluations=evaluations, score_key=score_key, target=target)

    def log_pyfunc(self, weights: Path, config_text: str, examples: Path, requirements: list[str]) -> None:
        """Log ``weights`` as the run's MLflow pyfunc model (lab.tracking.pyfunc), signature from the example files."""
        self._request("pyfunc", weights=weights, config_text=config_text, examples=examples,
                      requirements=requirements)

    # -------------------------------------------------------------------------------------- the end of the run

    def report_crashes(self) -> None:
        """If this process dies of a fatal signal (a segfault in an extension, say), the worker records the run
        FAILED as "crashed (signal N)" with the Python stack of every thread, rather than a vague exit. One
        tracker per process may do this (faulthandler has one output); close() gives faulthandler back."""
        self._faulthandler_was_enabled = faulthandler.is_enabled()  # by -X faulthandler, or pytest
        faulthandler.enable(file=self._crash_writer, all_threads=True)
        self._reporting_crashes = True

    def finish(self, status: str) -> None:
        """Mark the run ``status``; ``final_status`` then says what the store holds, even when this raises."""
        try:
            self._request("finish", status=status)
        except TrackingError as e:
            if e.applied:  # an earlier call failed, but the run has its status
                self.final_status = status
                self.close(wait=False)
            else:
                self.close()  # the worker tries once more to mark the run FAILED on its way out
            raise
        except BaseException:
            self.close()
            raise
        self.final_status = status
        # The run is complete in the store: let the worker shut its libraries down without waiting for it.
        self.close(wait=False)

    def close(self, wait: bool = True) -> None:
        """Let the worker go (it marks an unfinished run FAILED) and, by default, reap it."""
        if self._reporting_crashes:  # from here on a crash of this process is no longer the run's
            self._reporting_crashes = False
            if self._faulthandler_was_enabled and sys.__stderr__ is not None:
                faulthandler.enable(file=sys.__stderr__, all_threads=True)
            else:
                faulthandler.disable()
        with self._lock:  # not while the heartbeat thread is writing a line
            if self._process.stdin and not self._process.stdin.closed:
                with contextlib.suppress(OSError):
                    self._process.stdin.close()
            if self._crash_writer >= 0:  # once: the number may belong to another file afterwards
                os.close(self._crash_writer)
                self._crash_writer = -1
        if not wait:
            return
        try:
            code = self._process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            return
        if self.final_status is None and code == MARKED_FAILED:
            self.final_status = "FAILED"


# ------------------------------------------------------------------------------------------ the worker


def serve(requests: IO[str], replies: IO[str], crashes: int | None = None) -> int:
    """Apply the parent's requests to an in-process Tracker until ``finish`` or end of input; returns the exit
    status (0, or MARKED_FAILED/NOT_MARKED when the parent went away first). ``crashes``: the pipe the parent's
    faulthandler writes to."""
    import mlflow  # noqa: F401 - the expensive import, done while the parent is still starting up

    from lab.core.errors import StoreError
    from lab.tracking.tracker import Tracker

    tracker: Tracker | None = None
    deferred_error: str | None = None
    error_tagged = False  # the parent recorded why the run failed: keep its words

    def reply(**payload: Json) -> None:
        replies.write(json.dumps(payload) + "\n")
        replies.flush()

    for line in requests:
        try:
            request = json.loads(line)
        except ValueError:  # the last line of a parent that died while writing it
            break
        name = request.pop("op")
        op = OPS.get(name)
        answered = op is not None and op.answered
        try:
            if op is None:
                raise ValueError(f"unknown request {name!r}")
            arguments = op.decode(request)
            if name in OPENING:
                tracker = getattr(Tracker, op.method)(**arguments)
                reply(run_id=tracker.run_id, run_name=tracker.run_name, artifact_uri=tracker.artifact_uri,
                      experiment=tracker.experiment)
                _preload_plotting()  # while the parent trains, so the learning curve is quick at the end
                continue
            assert tracker is not None, f"{name} before start"
            if name == "finish":
                reply(error=_finish(tracker, **arguments) or deferred_error, applied=True)
                return 0
            if answered:  # nothing is answered before the metrics sent ahead of it are committed
                tracker.flush()
            getattr(tracker, op.method)(**arguments)
            error_tagged = error_tagged or (name == "tags" and "lab.error" in request["tags"])
            if answered:
                reply(error=deferred_error, applied=True)
                deferred_error = None
        except StoreError as e:
            if answered:
                reply(store_error=str(e))
            else:
                deferred_error = deferred_error or f"{name}: {e}"
        except Exception as e:  # reported to the parent at its next answered call
            message = f"{name}: {type(e).__name__}: {e}"
            if answered:
                reply(error=message)
            else:
                deferred_error = deferred_error or message
    if tracker is None:
        return 0
    return _orphaned(tracker, _crash_report(crashes), error_tagged)


def _finish(tracker: Tracker, status: str) -> str | None:
    """``finish`` in the worker: mark the run ``status`` even when its last metrics cannot be written (a full
    disk); returns that error, if any. A failure to set the status itself is raised."""
    try:
        tracker.flush()
    except Exception as e:
        unsaved = f"finish: {type(e).__name__}: {e} ({tracker.unsaved_metrics} metric points could not be written)"
    else:
        unsaved = None
    tracker.terminate(status)
    return unsaved


def _orphaned(tracker: Tracker, crash: str, error_tagged: bool) -> int:
    """The parent went away without finishing: never leave the run RUNNING, and say how it ended if known."""
    why = _crash_cause(crash)
    try:
        if crash:
            tracker.log_text(crash, "error/crash.txt")
        if why:
            tracker.set_tags({"lab.error": f"the lab process {why}; its Python stack is in error/crash.txt"})
        elif not error_tagged:
            tracker.set_tags({"lab.error": "the lab process exited before finishing the run"})
    except Exception:  # what cannot be said does not keep the run RUNNING
        pass
    try:
        _finish(tracker, "FAILED")
    except Exception as e:  # the store cannot be written (a full disk): the run stays RUNNING
        if why:
            print(f"lab: the lab process {why}; run {tracker.run_id} could not be marked FAILED ({e}): "
                  "`lab runs clean` marks it once the store can be written", file=sys.stderr)
        return NOT_MARKED
    if why:
        print(f"lab: the lab process {why}: run {tracker.run_id} marked FAILED, its Python stack logged as "
              "error/crash.txt", file=sys.stderr)
    return MARKED_FAILED


def _crash_report(crashes: int | None) -> str:
    """What the parent's faulthandler wrote before the parent died (empty if it did not crash)."""
    if crashes is None:
        return ""
    chunks = []
    os.set_blocking(crashes, False)  # a parent that is alive (it closed its end of stdin) has written nothing
    with contextlib.suppress(BlockingIOError, OSError):
        while chunk := os.read(crashes, 1 << 16):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def _crash_cause(crash: str) -> str | None:
    """ "crashed (signal 11, Segmentation fault)" from faulthandler's report, None if there is none."""
    first = crash.lstrip().partition("\n")[0]
    if not first.startswith("Fatal Python error: "):
        return None
    name = first.removeprefix("Fatal Python error: ").strip()
    number = FATAL_SIGNALS.get(name)
    return f"crashed (signal {int(number)}, {name})" if number is not None else f"crashed ({name})"


def _preload_plotting() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and then finishes the run
    replies, sys.stdout = sys.stdout, sys.stderr  # keep stray prints off the reply channel
    crashes = int(sys.argv[1]) if len(sys.argv) > 1 else None
    sys.exit(serve(sys.stdin, replies, crashes))


if __name__ == "__main__":
    main()
