"""Tracking: batched metrics, the tracking worker's protocol, and what happens when the parent dies."""

from __future__ import annotations

import inspect
import io
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from mlflow import MlflowClient

from lab.core.errors import TrackingError
from lab.tracking.tracker import Tracker
from lab.tracking.worker import OPENING, OPS, RemoteTracker, serve


@pytest.fixture(autouse=True)
def tracking_uri(store: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    uri = f"sqlite:///{store / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def test_metrics_are_sent_in_batches_of_up_to_1000(monkeypatch):
    calls = {"log_batch": 0, "log_metric": 0}
    original = MlflowClient.log_batch

    def counting_log_batch(self, *args, **kwargs):
        calls["log_batch"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_batch", counting_log_batch)
    monkeypatch.setattr(MlflowClient, "log_metric", lambda *a, **k: calls.__setitem__("log_metric", 1))
    tracker = Tracker.start("batching", None, {})
    calls["log_batch"] = 0
    for step in range(1250):
        tracker.log_metrics({"loss": 1.0 / (step + 1), "reward": float(step)}, step)
    tracker.finish("FINISHED")
    assert calls == {"log_batch": 3, "log_metric": 0}  # 2500 points: 1000 + 1000 + 500
    history = MlflowClient().get_metric_history(tracker.run_id, "reward")
    assert [m.step for m in history] == list(range(1250))


def test_remote_tracker_records_a_whole_run(tmp_path: Path):
    artifact = tmp_path / "weights.txt"
    artifact.write_text("w")
    tracker = RemoteTracker()
    tracker.start("remote", "named", {"lab.plugin": "toy"})
    tracker.log_params({"lr": 0.1, "net_arch": [64, 64], "experiment": None})
    for step in range(500):
        tracker.log_metrics({"loss": float(step)}, step)
    tracker.log_artifact(artifact, "model")
    tracker.log_learning_curve([(10, {"mean_return": 1.0}), (20, {"mean_return": 2.0})], "mean_return", 5.0)
    tracker.finish("FINISHED")
    run = MlflowClient().get_run(tracker.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "named" == tracker.run_name
    assert run.data.params == {"lr": "0.1", "net_arch": "[64, 64]", "experiment": "null"}
    assert run.data.tags["lab.plugin"] == "toy"
    assert len(MlflowClient().get_metric_history(tracker.run_id, "loss")) == 500
    names = {f.path for f in MlflowClient().list_artifacts(tracker.run_id)}
    assert {"model", "learning_curve.png"} <= names


def test_every_remote_call_reaches_its_tracker_method_through_the_one_table(tmp_path: Path):
    """Each RunTracker call is sent as its entry in worker.OPS says, and what crosses the pipe binds to the
    Tracker method that entry names, paths rebuilt as paths: a call the worker could not apply fails here, not
    in a run. Every entry is used."""
    sent: list[tuple[str, dict]] = []
    tracker = object.__new__(RemoteTracker)  # no worker: what would be sent is recorded
    tracker._request = lambda name, /, **arguments: sent.append((name, arguments))
    tracker.close = lambda wait=True: None
    tracker._buffer, tracker._last_send = [], time.monotonic()
    tracker.start("e", "n", {"a": "b"})
    tracker.resume("run", {"a": "b"})
    tracker.log_params({"lr": 0.1, "folder": tmp_path, "arch": [64, 64]})
    tracker.set_tags({"k": "v"})
    tracker.log_metrics({"loss": 1.0}, 3)
    tracker._send_metrics()
    tracker.flush()
    tracker.log_text("t", "a.txt")
    tracker.log_dataset("d", "digest", "source", "{}")
    tracker.log_artifact(tmp_path, "x")
    tracker.delete_artifacts("x")
    tracker.log_image(tmp_path / "i.png", "samples", 3)
    tracker.log_learning_curve([(1, {"s": 1.0})], "s", None)
    tracker.log_pyfunc(tmp_path / "weights", "config", tmp_path / "examples", ["torch"])
    tracker.finish("FINISHED")
    assert [name for name, _ in sent] == list(OPS)
    received = {}
    for name, arguments in sent:
        op = OPS[name]
        received[name] = op.decode(json.loads(json.dumps(op.encode(arguments))))  # what the worker gets
        owner = () if name in OPENING else (None,)  # start, resume: constructors; the rest: the run's methods
        inspect.signature(getattr(Tracker, op.method)).bind(*owner, **received[name])
    assert received["artifact"]["path"] == tmp_path and received["pyfunc"]["examples"] == tmp_path / "examples"
    assert received["params"]["params"] == {"lr": 0.1, "folder": str(tmp_path), "arch": [64, 64]}
    assert received["curve"]["evaluations"] == [(1, {"s": 1.0})]


def test_remote_tracker_logs_text_datasets_images_and_deletes_artifacts(tmp_path: Path):
    from PIL import Image

    picture = tmp_path / "sample.png"
    Image.new("RGB", (4, 4)).save(picture)
    folder = tmp_path / "step-1"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"w")
    tracker = RemoteTracker()
    tracker.start("everything", None, {})
    tracker.set_tags({"lab.step": "7"})
    tracker.log_text("hello", "notes/hello.txt")
    tracker.log_dataset("toy", "abc123", "toy://rows", '{"rows": 3}')
    tracker.log_image(picture, "samples", 5)
    tracker.log_artifact(folder, "checkpoints/step-1")
    tracker.delete_artifacts("checkpoints/step-1")
    tracker.finish("FINISHED")
    client = MlflowClient()
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["lab.step"] == "7"
    assert [entry.dataset.name for entry in run.inputs.dataset_inputs] == ["toy"]
    assert {"notes", "images"} <= {entry.path for entry in client.list_artifacts(tracker.run_id)}
    assert client.list_artifacts(tracker.run_id, "checkpoints") == []
    text = Path(client.download_artifacts(tracker.run_id, "notes/hello.txt", str(tmp_path / "download")))
    assert text.read_text() == "hello"


def test_an_unknown_request_is_reported_at_the_next_answered_call():
    """The worker's dispatch, in process: a request that is not in the table fails like any call not waited for."""
    messages = [{"op": "start", "experiment": "protocol", "run_name": None, "tags": {}}, {"op": "nonsense"},
                {"op": "flush"}, {"op": "finish", "status": "FINISHED"}]
    replies = io.StringIO()
    assert serve(io.StringIO("".join(json.dumps(m) + "\n" for m in messages)), replies) == 0
    started, flushed, finished = (json.loads(line) for line in replies.getvalue().splitlines())
    assert flushed == {"error": "nonsense: ValueError: unknown request 'nonsense'", "applied": True}
    assert finished == {"error": None, "applied": True}
    assert MlflowClient().get_run(started["run_id"]).info.status == "FINISHED"


def test_a_run_whose_parent_vanishes_is_marked_failed_not_left_running():
    tracker = RemoteTracker()
    tracker.start("orphans", None, {})
    run_id = tracker.run_id
    tracker.close()  # end of input without finish: what the worker sees when lab is SIGKILLed
    run = MlflowClient().get_run(run_id)
    assert run.info.status == "FAILED"
    assert "exited before finishing" in run.data.tags["lab.error"]


def test_worker_errors_surface_in_the_parent(tmp_path: Path):
    tracker = RemoteTracker()
    tracker.start("errors", None, {})
    with pytest.raises(TrackingError, match="artifact"):
        tracker.log_artifact(tmp_path / "does-not-exist.bin")
    tracker.finish("FAILED")


def test_runs_started_at_once_on_a_brand_new_store(tmp_path: Path, monkeypatch):
    fresh = tmp_path / "fresh"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{fresh / 'mlflow.db'}")

    def one_run(i: int) -> str:
        tracker = RemoteTracker()
        tracker.start("crowd", None, {"i": str(i)})
        tracker.finish("FINISHED")
        return tracker.run_id

    with ThreadPoolExecutor(4) as pool:
        run_ids = list(pool.map(one_run, range(4)))
    statuses = {MlflowClient().get_run(r).info.status for r in run_ids}
    assert len(set(run_ids)) == 4 and statuses == {"FINISHED"}
    assert os.path.exists(fresh / "mlflow.db")


def test_flush_returns_once_every_metric_is_in_the_store():
    """Flush before a checkpoint: a kill -9 of lab and its worker right after must lose nothing logged before it
    (the worker buffers metrics too, so handing them over is not enough)."""
    tracker = RemoteTracker()
    tracker.start("durable", None, {})
    for step in range(1, 41):  # far fewer than a batch: everything sits in buffers
        tracker.log_metrics({"train/loss": 1.0 / step}, step)
    tracker.log_metrics({"eval/mean_return": 7.5}, 40)
    tracker.flush()
    tracker._process.kill()  # what kill -9 does to the worker: no chance to write what it holds
    tracker._process.wait()
    client = MlflowClient()
    assert [m.step for m in client.get_metric_history(tracker.run_id, "train/loss")] == list(range(1, 41))
    assert client.get_run(tracker.run_id).data.metrics["eval/mean_return"] == 7.5
    tracker.close()


def test_the_heartbeat_is_silent_after_its_run_is_finished(monkeypatch):
    """A beat racing the end of the run once printed `Exception in thread lab-heartbeat ... I/O operation on
    closed file`; the closed tracker now answers TrackingError, which the heartbeat expects."""
    import threading

    from lab.training import runner

    crashes: list[str] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: crashes.append(f"{args.exc_type.__name__}"))
    monkeypatch.setattr(runner, "HEARTBEAT_SECONDS", 0.001)
    tracker = RemoteTracker()
    tracker.start("heartbeat", None, {})
    heartbeat = runner.Heartbeat(tracker)
    tracker.finish("FINISHED")  # the heartbeat keeps beating against a closed tracker for a while
    with pytest.raises(TrackingError, match="closed"):
        tracker.set_tags({"late": "1"})
    heartbeat.beat()
    heartbeat.stop()
    assert crashes == [] and not heartbeat._thread.is_alive()


def test_a_parent_that_segfaults_is_recorded_as_crashed_not_interrupted(tmp_path: Path):
    """A fatal signal in lab (a broken C extension, threads=100000) is FAILED "crashed (signal 11, ...)" with
    the Python stack of the crash, by the worker that outlives it; never KILLED "interrupted by the user"."""
    import subprocess
    import sys
    import time

    script = ("import ctypes, sys\n"
              "from lab.tracking.worker import RemoteTracker\n"
              "tracker = RemoteTracker()\n"
              "tracker.start('crashes', None, {})\n"
              "tracker.report_crashes()\n"
              "print(tracker.run_id, flush=True)\n"
              "ctypes.string_at(0)\n")
    process = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert process.returncode == -11, process.stderr
    run_id = process.stdout.strip()
    client = MlflowClient()
    deadline = time.monotonic() + 60
    while client.get_run(run_id).info.status == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)  # the worker lives on in its own session, and marks the run
    run = client.get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["lab.error"].startswith("the lab process crashed (signal 11, Segmentation fault)")
    crash = Path(client.download_artifacts(run_id, "error/crash.txt", str(tmp_path)))
    assert "Fatal Python error: Segmentation fault" in crash.read_text() and "string_at" in crash.read_text()


def test_a_resumed_run_keeps_why_its_last_session_ended_as_history():
    """`lab.error` (and `lab.stopped`) describe a session that is over: a resumed run that goes on to finish
    must not carry them, but they are not forgotten."""
    first = Tracker.start("history", None, {})
    first.set_tags({"lab.error": "stale: process 12 on h is gone", "lab.stopped": "interrupted by the user"})
    first.finish("FAILED")
    resumed = Tracker.resume(first.run_id, {"lab.resumed_from": "step-100"})
    resumed.finish("FINISHED")
    tags = MlflowClient().get_run(first.run_id).data.tags
    assert "lab.error" not in tags and "lab.stopped" not in tags
    assert tags["lab.error.previous"] == "stale: process 12 on h is gone"
    assert tags["lab.stopped.previous"] == "interrupted by the user"
    assert tags["lab.resumed_from"] == "step-100"


def test_a_failed_metric_write_is_kept_and_tried_again(monkeypatch):
    """A batch that the store refused (a full disk, for a moment) stays buffered: the next flush writes it."""
    tracker = Tracker.start("retry", None, {})
    original = MlflowClient.log_batch
    refusals = iter([OSError(28, "No space left on device")])

    def log_batch(self, *args, **kwargs):
        error = next(refusals, None)
        if error is not None and kwargs.get("metrics"):
            raise error
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_batch", log_batch)
    tracker.log_metrics({"loss": 1.0}, 1)
    with pytest.raises(OSError, match="No space left"):
        tracker.flush()
    assert tracker.unsaved_metrics == 1
    tracker.finish("FINISHED")
    assert [m.step for m in MlflowClient().get_metric_history(tracker.run_id, "loss")] == [1]


@pytest.mark.skipif(sys.platform != "linux", reason="a file size limit (RLIMIT_FSIZE) stands in for a full disk")
def test_a_folder_upload_that_fails_leaves_no_partial_file(tmp_path: Path):
    """MLflow copies a folder file by file, in place: a full disk midway left a 0-byte checkpoint zip in the run.
    lab stages the copy beside it and renames it into place, or removes it. The disk fills for real here: the
    process may write no file beyond 1,500 bytes, so the zip's copy fails in the kernel (EFBIG, as ENOSPC)."""
    import subprocess

    folder = tmp_path / "step-300"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"a" * 1000)
    (folder / "b.zip").write_bytes(b"b" * 3000)
    script = (f"import resource, sys\n"
              f"from pathlib import Path\n"
              f"from lab.tracking.tracker import Tracker\n"
              f"tracker = Tracker.start('uploads', None, {{}})\n"
              f"print(tracker.run_id, tracker.artifact_uri, flush=True)\n"
              f"resource.setrlimit(resource.RLIMIT_FSIZE, (1500, resource.RLIM_INFINITY))\n"
              f"try:\n"
              f"    tracker.log_artifact(Path({str(folder)!r}), 'checkpoints/step-300')\n"
              f"except OSError as e:\n"
              f"    print('File too large' in str(e), 'b.zip' in str(e), flush=True)\n")
    process = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert process.returncode == 0, process.stderr
    (run_id, artifact_uri), error = (line.split() for line in process.stdout.splitlines())
    assert error == ["True", "True"]  # EFBIG: the zip could not grow
    root = Path(artifact_uri.removeprefix("file://"))
    assert not [path for path in root.rglob("*") if path.is_file()], "no partial file, no staging folder left"
    tracker = Tracker(MlflowClient(), run_id)
    tracker.log_artifact(folder, "checkpoints/step-300")  # the disk has room again: the same upload lands whole
    assert {p.name: p.stat().st_size for p in (root / "checkpoints/step-300").iterdir()} == {"a.bin": 1000,
                                                                                             "b.zip": 3000}
    tracker.finish("FINISHED")
