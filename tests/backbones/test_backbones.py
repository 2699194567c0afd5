"""Backbones: every plugin end to end, the textbook knobs, refused combinations, save/load, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lab.core.config import resolve
from lab.core.errors import ConfigError
from lab.core.loading import load_registry, make_plugin_manager
from lab.training.build import build_context

BACKBONE_DATA = [("perceptron", "digits"), ("mlp", "digits"), ("cnn", "digits"), ("rnn", "digits_rows"),
                 ("lstm", "digits_rows"), ("gru", "digits_rows"), ("transformer", "digits_rows"),
                 ("mlp", "sine"), ("gru", "sine")]
TINY = ["steps=600", "eval_every=300", "progress=false"]


@pytest.fixture(scope="module")
def registry():
    return load_registry(make_plugin_manager(entry_points=False))


def build(registry, **keys):
    config = resolve(registry, {"seed": 0, **keys})
    torch.manual_seed(config.runner.seed)
    return config.plugin.build(build_context(config, "cpu"))


def artifacts(run) -> set[str]:
    root = Path(run.info.artifact_uri.removeprefix("file://"))
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def tracked(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'mlflow.db'}")


@pytest.mark.slow
@pytest.mark.parametrize(("plugin", "data"), BACKBONE_DATA)
def test_backbone_trains_end_to_end(lab, runs, tracked, plugin, data):
    result = lab("run", f"plugin={plugin}", f"data={data}", *TINY)
    assert result.code == 0, result.err
    (run,) = runs()
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    assert {"eval/score", "best/score", "train/loss", "model/parameters"} <= set(metrics)
    picture = "predictions.png" if data == "sine" else "confusion_matrix.png"
    assert ("test/mse" if data == "sine" else "test/accuracy") in metrics
    if data == "sine":
        assert metrics["test/mse"] < metrics["test/mean_baseline_mse"], "learns more than the mean"
    else:
        assert {"train/accuracy", "eval/accuracy", "eval/loss"} <= set(metrics)
    assert {"config.yaml", "model/best/model.safetensors", "model/final/model.safetensors", "learning_curve.png",
            picture} <= artifacts(run)
    assert "test (best model)" in result.out
    (dataset_input,) = run.inputs.dataset_inputs
    assert dataset_input.dataset.name == data and '"split_seed": 0' in dataset_input.dataset.profile
    assert run.data.tags["lab.data.split_seed"] == "0"


@pytest.mark.parametrize(("keys", "message"), [
    ({"plugin": "mlp", "data": "digits", "loss": "bce"}, "loss=bce needs 2 classes; digits has 10"),
    ({"plugin": "mlp", "data": "digits", "loss": "mse"}, "loss=mse on classes needs one-hot targets"),
    ({"plugin": "cnn", "data": "moons"}, "cnn needs image-shaped inputs"),
    ({"plugin": "lstm", "data": "moons"}, "lstm needs sequences"),
    ({"plugin": "mlp", "data": "sine", "loss": "cross_entropy"}, "loss=cross_entropy needs classes"),
    ({"plugin": "perceptron", "data": "sine", "rule": "perceptron", "output": "step"}, "perceptron rule needs classes"),
    ({"plugin": "perceptron", "data": "digits", "rule": "perceptron"}, "it needs output=step"),
    ({"plugin": "perceptron", "data": "digits", "output": "step"}, "a step output has no gradient"),
    ({"plugin": "transformer", "data": "digits_rows", "heads": 3}, "heads=3 must divide d_model=64"),
    ({"plugin": "mlp", "env": "CartPole"}, "env= does not apply to backbone plugin 'mlp'"),
    ({"plugin": "mlp", "data": "digitz"}, "unknown dataset 'digitz' (did you mean 'digits'?)"),
])
def test_combinations_that_cannot_work_are_refused(registry, keys, message):
    with pytest.raises(ConfigError) as error:
        resolve(registry, keys)
    assert message in str(error.value)


def test_refused_before_a_run_exists(lab, store, runs):
    result = lab("run", "plugin=cnn", "data=moons", "progress=false")
    assert result.code == 2 and "cnn needs image-shaped inputs" in result.err
    assert runs() == []


def training_loss(model) -> float:
    x, y = model.splits["train"]
    with torch.no_grad():
        return float(model._loss(model.net(x[:256]), y[:256]))


KNOBS = ([("activation", a) for a in ("relu", "tanh", "sigmoid", "gelu", "elu", "leaky_relu")]
         + [("optimizer", o) for o in ("gd", "sgd", "adam", "rmsprop")]
         + [("loss", loss) for loss in ("cross_entropy", "bce", "mse")])


@pytest.mark.parametrize(("key", "value"), KNOBS)
def test_every_activation_optimizer_and_loss_trains(registry, key, value):
    keys = {"plugin": "mlp", "data": "moons", key: value, "lr_schedule": "constant"}
    if key == "optimizer" and value in ("gd", "sgd"):
        keys.update(lr=0.5, momentum=0.9)
    if key == "loss" and value == "mse":
        keys["one_hot"] = True
    model = build(registry, **keys)
    before = training_loss(model)
    model.train(700 * 30, lambda step, boundary=True: True)
    assert training_loss(model) < 0.9 * before


def test_the_perceptron_rule_learns_a_separable_problem(registry):
    model = build(registry, plugin="perceptron", data="digits", rule="perceptron", output="step", lr=0.1)
    model.train(1257 * 5, lambda step, boundary=True: True)
    assert model.metrics("val")["accuracy"] > 0.85


def test_save_load_round_trip_gives_identical_predictions(registry, tmp_path: Path):
    trained = build(registry, plugin="transformer", data="digits_rows")
    trained.train(1000, lambda step, boundary=True: True)
    trained.save(tmp_path / "model")
    fresh = build(registry, plugin="transformer", data="digits_rows", seed=3)
    fresh.load(tmp_path / "model")
    trained.net.eval(), fresh.net.eval()  # the preset uses dropout: compare the deterministic inference path
    with torch.no_grad():
        np.testing.assert_array_equal(fresh.net(trained.splits["test"][0]).numpy(),
                                      trained.net(trained.splits["test"][0]).numpy())


def test_same_seed_same_training(registry):
    losses = []
    for seed in (4, 4, 5):
        model = build(registry, plugin="gru", data="digits_rows", seed=seed)
        model.train(2000, lambda step, boundary=True: True)
        losses.append(training_loss(model))
    assert losses[0] == losses[1] and losses[0] != losses[2]
