"""Ctrl-C and SIGTERM on a real `lab run` process: checkpoint saved, run KILLED, exit 130 or 143; then
`lab run resume=<id>` finishes the budget in the same run."""

from __future__ import annotations

import os
import re
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
        [sys.executable, "-m", "lab.cli", "run", "plugin=ppo", "env=CartPole", "steps=200000", "eval_every=4000",
         "eval_episodes=2", "stop_when_solved=false", "progress=false", "gif=false"],
        env={**os.environ, "MLFLOW_TRACKING_URI": uri}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = MlflowClient(uri)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until it is training: its first SB3 metrics are in the store
        time.sleep(0.5)
        experiment = client.get_experiment_by_name("ppo-CartPole-v1")
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        if runs and "rollout/ep_rew_mean" in runs[0].data.metrics:
            break
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == code, err
    assert re.search(r"checkpoint step-\d+ saved, run marked KILLED", err)
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "KILLED"
    assert "checkpoints" in {a.path for a in client.list_artifacts(run.info.run_id)}
    (checkpoint,) = client.list_artifacts(run.info.run_id, "checkpoints")
    assert checkpoint.path == f"checkpoints/{run.data.tags['lab.checkpoint']}"
    stopped_at = int(run.data.tags["lab.checkpoint"].removeprefix("step-"))
    assert 0 < stopped_at < 200000
    budget = stopped_at + 5000  # a shorter budget than the original keeps the test quick; resume allows it

    resumed = subprocess.run([sys.executable, "-m", "lab.cli", "run", f"resume={run.info.run_id}", f"steps={budget}"],
                             env={**os.environ, "MLFLOW_TRACKING_URI": uri}, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    run = client.get_run(run.info.run_id)
    assert run.info.status == "FINISHED" and int(run.data.tags["lab.step"]) >= budget
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "time/total_timesteps")]
    assert steps == sorted(set(steps)) and steps[-1] >= budget, "one continuous curve, no duplicates"
    assert any(step < stopped_at for step in steps) and any(step > stopped_at for step in steps)
    evaluations = [m.step for m in client.get_metric_history(run.info.run_id, "eval/mean_return")]
    assert evaluations == sorted(set(evaluations)) and evaluations[-1] > stopped_at
