"""The conformance kit: every built-in plugin passes it, and it catches the defects it is meant to catch."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.core.loading import load_registry, make_plugin_manager
from lab.testing import CHECKS, ConformanceError, check_plugin, run_checks

OFF_POLICY = {"learning_starts": 100, "gif": False}
BUILTINS = {
    "dqn": {"env": "CartPole", **OFF_POLICY},
    "ppo": {"env": "CartPole", "gif": False},
    "a2c": {"env": "CartPole", "gif": False},
    "sac": {"env": "Pendulum", **OFF_POLICY},
    "td3": {"env": "Pendulum", **OFF_POLICY},
    "ddpg": {"env": "Pendulum", **OFF_POLICY},
    "ars": {"env": "CartPole", "gif": False},
    "qrdqn": {"env": "CartPole", **OFF_POLICY},
    "tqc": {"env": "Pendulum", **OFF_POLICY, "net_arch": [64, 64]},
    "trpo": {"env": "CartPole", "gif": False, "n_steps": 128, "n_envs": 1},
    "crossq": {"env": "Pendulum", **OFF_POLICY, "critic_arch": [64, 64]},
    "ppo_lstm": {"env": "CartPole", "gif": False, "n_steps": 64, "n_envs": 2, "batch_size": 64,
                 "lstm_hidden_size": 16},
    "perceptron": {"data": "digits"},
    "mlp": {"data": "digits"},
    "cnn": {"data": "digits"},
    "rnn": {"data": "digits_rows"},
    "lstm": {"data": "digits_rows"},
    "gru": {"data": "digits_rows"},
    "transformer": {"data": "digits_rows"},
    "vae": {"data": "moons"},
    "gan": {"data": "moons"},
    "diffusion": {"data": "moons"},
}


@pytest.fixture(scope="module")
def registry():
    return load_registry(make_plugin_manager(entry_points=False))


def test_every_builtin_plugin_is_covered(registry):
    assert set(BUILTINS) == set(registry.plugins)


@pytest.mark.slow
@pytest.mark.parametrize("plugin", sorted(BUILTINS))
def test_builtin_plugin_passes_the_conformance_kit(registry, store: Path, plugin):
    report = run_checks(registry, plugin, {**BUILTINS[plugin], "steps": 300, "eval_every": 300},
                        store_uri=f"sqlite:///{store / 'mlflow.db'}")
    failed = [f"{check.name}: {check.detail}" for check in report if not check.passed]
    assert not failed, failed
    assert [check.name for check in report] == list(CHECKS)


# ------------------------------------------------------------------------------- the kit can fail


@pytest.fixture
def toy_registry(with_toy_plugin):
    import toy_plugin

    pm = make_plugin_manager(entry_points=False)
    pm.register_source(toy_plugin, "toy_plugin", "lab-toy", "9.9")
    return load_registry(pm)


def test_the_toy_plugin_passes(toy_registry, store):
    report = run_checks(toy_registry, "toy", {"env": "Toy", "steps": 50, "eval_every": 25},
                        store_uri=f"sqlite:///{store / 'mlflow.db'}")
    assert all(check.passed for check in report), report


def test_a_model_that_forgets_its_weights_fails_save_load(toy_registry, monkeypatch):
    import toy_plugin

    monkeypatch.setattr(toy_plugin.ToyModel, "load", lambda self, directory: None)
    with pytest.raises(ConformanceError, match="differ after save"):
        check_plugin("toy", "save_load", registry=toy_registry, env="Toy", steps=50)


def test_a_model_that_ignores_its_seed_fails_determinism(toy_registry, monkeypatch):
    import os

    import toy_plugin

    original = toy_plugin.ToyModel.evaluate
    unseeded = {"mean_return": lambda: float(int.from_bytes(os.urandom(4), "little"))}  # e.g. an unseeded env
    monkeypatch.setattr(toy_plugin.ToyModel, "evaluate",
                        lambda self, episodes: {**original(self, episodes), "mean_return": unseeded["mean_return"]()})
    with pytest.raises(ConformanceError, match="gave different evaluation metrics"):
        check_plugin("toy", "determinism", registry=toy_registry, env="Toy", steps=50)


def test_an_evaluation_without_the_score_fails(toy_registry, monkeypatch):
    import toy_plugin

    monkeypatch.setattr(toy_plugin.ToyModel, "evaluate", lambda self, episodes: {"other": 1.0})
    with pytest.raises(ConformanceError, match="without the score 'mean_return'"):
        check_plugin("toy", "evaluate", registry=toy_registry, env="Toy", steps=50)


def test_an_unregistered_plugin_fails_and_skips_the_rest(toy_registry):
    report = run_checks(toy_registry, "ghost", {"env": "Toy"})
    assert not report[0].passed and "not registered" in report[0].detail
    assert all(not check.passed and "skipped" in check.detail for check in report[1:])


def test_plugins_check_cli_reports_each_check(lab, with_toy_plugin):
    result = lab("plugins", "check", "toy", "env=Toy", "steps=50", "eval_every=25")
    assert result.code == 0, result.err
    assert result.out.count("PASS") == len(CHECKS) and "7/7 checks passed for plugin 'toy'" in result.out
    missing = lab("plugins", "check", "ghost", "env=Toy")
    assert missing.code == 1 and "FAIL  registers" in missing.out
