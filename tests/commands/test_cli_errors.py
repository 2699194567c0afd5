"""Bad input: exit code 2, one clear line on stderr, and no MLflow run (nor store) created."""

from __future__ import annotations

from pathlib import Path

import pytest

BAD_RUNS = [
    (["plugin=dqm", "env=CartPole"], "unknown plugin 'dqm' (did you mean 'dqn'?)"),
    (["plugin=dqn", "env=CartPol"], "unknown env 'CartPol'"),
    (["plugin=dqn", "env=CartPole", "learning_rat=0.1"], "unknown key 'learning_rat'"),
    (["plugin=dqn", "env=CartPole", "steps=abc"], "steps=abc: expected an integer"),
    (["plugin=dqn", "env=CartPole", "steps=-5"], "steps=-5: must be >= 1"),
    (["plugin=dqn", "env=CartPole", "steps=1.5"], "steps=1.5: expected an integer >= 1"),
    (["plugin=dqn", "env=CartPole", "device=tpu"], "device=tpu: valid: auto, cpu, cuda, cuda:N, mps"),
    (["plugin=dqn", "env=CartPole", "lr"], "malformed override 'lr'"),
    (["plugin=dqn", "env=CartPole", "=3"], "malformed override '=3'"),
    (["plugin=dqn", "env=CartPole", "a==b"], "malformed override 'a==b'"),
    (["config=missing.yaml"], "config file not found: missing.yaml"),
    (["plugin=dqn", "env=Pendulum"], "plugin 'dqn' cannot train on Pendulum-v1"),
    (["plugin=dqn", "env=CartPole", "seed=0,abc"], "seed=abc: expected an integer"),
    ([], "missing plugin=NAME"),
]


def assert_refused(result, message: str) -> None:
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("lab: error: ") and message in lines[0]


@pytest.mark.parametrize(("args", "message"), BAD_RUNS)
def test_bad_run_input_creates_nothing(lab, tmp_path: Path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert_refused(lab("run", *args), message)
    assert not (tmp_path / "mlflow").exists(), "bad input must not create a store or a run"


def test_cuda_requested_without_cuda_is_refused_before_a_run(lab, store, runs):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert_refused(lab("run", "plugin=dqn", "env=CartPole", "device=cuda"), "CUDA is not available")
    assert runs() == []


def test_show_reports_the_same_errors(lab, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_refused(lab("show", "plugin=ppo", "env=LunarLander", "n_epochs=zero"), "n_epochs=zero")


def test_eval_of_unknown_run_id(lab, store):
    assert_refused(lab("eval", "run=0123456789abcdef"), "unknown run id '0123456789abcdef'")


@pytest.mark.parametrize(("args", "message"), [
    ([], "missing run=: The model to evaluate: a run id (see `lab runs`) or a registered version, models:/"),
    (["run=abc", "episode=3"], "unknown key 'episode' for lab eval (did you mean 'episodes'?); valid keys: run, "
                               "episodes, device, seed"),
    (["run"], "malformed override 'run'"),
    (["run=abc", "episodes=abc"], "episodes=abc: expected an integer >= 1"),
    (["run=abc", "episodes=1.5"], "episodes=1.5: expected an integer >= 1"),
    (["run=abc", "episodes=0"], "episodes=0: must be >= 1"),
    (["run=abc", "seed=-1"], "seed=-1: must be >= 0"),
    (["run=abc", "seed=4294967296"], "seed=4294967296: must be <= 4,294,967,295 (numpy's seeds are 32-bit)"),
    (["model=models:/x@y", "run=abc"], "give run=<run id> or model=models:/NAME@ALIAS, not both"),
])
def test_bad_eval_input(lab, store, args, message):
    assert_refused(lab("eval", *args), message)
