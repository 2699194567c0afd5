"""Ctrl-C and SIGTERM on a real `lab run` process: checkpoint saved, run KILLED, exit 130 or 143."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_run_is_checkpointed_and_killed(store: Path, signum: int, code: int):
    uri = f"sqlite:///{store / 'mlflow.db'}"
    process = subprocess.Popen(
        [sys.executable, "-m", "lab.cli", "run", "plugin=dqn", "env=CartPole", "steps=500000",
         "stop_when_solved=false", "progress=false", "gif=false"],
        env={**os.environ, "MLFLOW_TRACKING_URI": uri}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = MlflowClient(uri)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until it is training: its first SB3 metrics are in the store
        time.sleep(0.5)
        experiment = client.get_experiment_by_name("dqn-CartPole-v1")
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        if runs and "rollout/ep_rew_mean" in runs[0].data.metrics:
            break
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == code, err
    assert "checkpoint saved, run marked KILLED" in err
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "KILLED"
    assert "checkpoints" in {a.path for a in client.list_artifacts(run.info.run_id)}
    (checkpoint,) = client.list_artifacts(run.info.run_id, "checkpoints")
    assert checkpoint.path == f"checkpoints/{run.data.tags['lab.checkpoint']}"
