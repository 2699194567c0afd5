"""Many `lab run` processes on one sqlite store at once, including a store that does not exist yet."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from lab.tracking.tracker import RetryingClient

PROCESSES = 8


@pytest.mark.slow
def test_eight_runs_start_together_on_a_brand_new_default_store(tmp_path: Path):
    environment = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}  # the default ./mlflow/
    assert not (tmp_path / "mlflow").exists()
    processes = [subprocess.Popen(
        [sys.executable, "-m", "lab.cli", "run", "plugin=dqn", "env=CartPole", "steps=300", "learning_starts=100",
         "eval_every=150", "eval_episodes=1", "gif=false", "progress=false", f"seed={seed}"],
        cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for seed in range(PROCESSES)]
    results = [process.communicate(timeout=600) for process in processes]
    assert [p.returncode for p in processes] == [0] * PROCESSES, [err[-500:] for _, err in results]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == PROCESSES
    assert {run.info.status for run in runs} == {"FINISHED"}
    assert sorted(int(run.data.params["seed"]) for run in runs) == list(range(PROCESSES))
    for run in runs:
        assert {"eval/mean_return", "best/score", "time/wall_seconds"} <= set(run.data.metrics)
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "eval/mean_return")]
        assert steps[:2] == [150, 300] and steps == sorted(set(steps)), "every evaluation, once"


class Flaky:
    def __init__(self, failures: int, message: str = "(sqlite3.OperationalError) database is locked") -> None:
        self.failures, self.message, self.calls = failures, message, 0

    def log_batch(self, run_id: str) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(self.message)
        return run_id


def test_locked_database_writes_are_retried(monkeypatch):
    monkeypatch.setattr("lab.tracking.tracker.RETRY_DELAYS", (0.0, 0.0, 0.0))
    flaky = Flaky(failures=2)
    assert RetryingClient(flaky).log_batch("r1") == "r1" and flaky.calls == 3
    with pytest.raises(RuntimeError, match="locked"):
        RetryingClient(Flaky(failures=10)).log_batch("r2")
    other = Flaky(failures=1, message="no such table")
    with pytest.raises(RuntimeError, match="no such table"):
        RetryingClient(other).log_batch("r3")
    assert other.calls == 1, "other errors are not retried"
