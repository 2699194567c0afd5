"""lab's conformance kit on reinforce, a learning check, and the full `lab run` path against a temporary store."""

from __future__ import annotations

import pytest

from lab import cli
from lab.testing import CHECKS, check_plugin

TINY = {"env": "CartPole", "steps": 1500, "eval_every": 750, "eval_episodes": 2, "gif": False}


@pytest.mark.parametrize("check", CHECKS)
def test_conformance(check):
    check_plugin("reinforce", check, **TINY)


@pytest.mark.parametrize("env", ["CartPole", "Pendulum"])
def test_discrete_and_continuous_actions_train(env, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert cli.main(["run", "plugin=reinforce", f"env={env}", "steps=1000", "eval_every=500", "eval_episodes=2",
                     "progress=false", "gif=false"]) == 0


def test_lab_run_end_to_end_with_gif(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert cli.main(["run", "plugin=reinforce", "env=CartPole", "steps=3000", "eval_every=1000",
                     "eval_episodes=3", "progress=false"]) == 0
    client = MlflowClient(uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "FINISHED"
    assert run.data.tags["lab.plugin.package"] == "lab-reinforce"
    assert run.data.tags["lab.preset"] == "reinforce:CartPole-v1"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "play.gif" in artifacts and "model" in artifacts
