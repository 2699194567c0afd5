"""Tracking: batched metrics, the tracking worker's protocol, and what happens when the parent dies."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from mlflow import MlflowClient

from lab.tracking import Tracker
from lab.tracking_worker import RemoteTracker, TrackingError


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
