"""Models users share: every kind logs an MLflow pyfunc model, `lab promote` registers it, `models:/NAME@ALIAS`
works in eval, play and sample and in mlflow.pyfunc.load_model, and `lab rerun` repeats a run exactly."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from lab.commands import common
from lab.commands.evaluate import logged_model

RUNS = {
    "agent": ["plugin=dqn", "env=CartPole", "steps=400", "eval_every=200", "eval_episodes=2", "gif=false"],
    "backbone": ["plugin=mlp", "data=digits", "steps=2000", "eval_every=1000"],
    "generator": ["plugin=vae", "data=moons", "steps=1000", "eval_every=500"],
}


def only_run(client, experiment: str):
    (run,) = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return run


def train(lab, client, kind: str) -> str:
    result = lab("run", *RUNS[kind], "progress=false", f"experiment={kind}")
    assert result.code == 0, result.err
    return only_run(client, kind).info.run_id


@pytest.mark.parametrize("kind", ["agent", "backbone", "generator"])
def test_pyfunc_round_trip_through_a_registered_alias(kind, lab, client, tmp_path: Path):
    run_id = train(lab, client, kind)
    result = lab("promote", f"run={run_id}", f"name={kind}-model", "alias=champion")
    assert result.code == 0 and f"{kind}-model version 1" in result.out

    uri = f"models:/{kind}-model@champion"
    model = mlflow.pyfunc.load_model(uri)
    folder = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path / "download")))
    assert "loader_module: lab.tracking.pyfunc" in (folder / "MLmodel").read_text()
    assert not list(folder.rglob("*.pkl")), "nothing in the model is unpickled"
    assert model.metadata.signature is not None and model.metadata.saved_input_example_info is not None
    example_file = folder / model.metadata.saved_input_example_info["artifact_path"]
    example = json.loads(example_file.read_text())

    registry = common.registry()
    with logged_model(registry, run_id, {}) as logged:  # the run's best model, rebuilt by lab itself
        if kind == "agent":
            observations = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
            actions = model.predict(observations)
            assert actions.shape == (32,) and set(actions.tolist()) <= {0, 1}
            np.testing.assert_array_equal(actions, logged.model.pyfunc_predict(observations))
        elif kind == "backbone":
            images = np.asarray(example["inputs"] if isinstance(example, dict) else example, dtype=np.float32)
            probabilities = model.predict(images)
            assert probabilities.shape == (len(images), 10)
            np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
            np.testing.assert_allclose(probabilities, logged.model.pyfunc_predict(images), rtol=1e-6)
        else:
            samples = model.predict(pd.DataFrame({"n": [5, 3], "seed": [7, 8]}))
            assert samples.shape == (8, 2)
            np.testing.assert_array_equal(samples[:5], logged.model.generate(5, 7))
            again = model.predict(pd.DataFrame({"n": [5], "seed": [7]}))
            np.testing.assert_array_equal(again, samples[:5])


def test_models_uri_works_in_eval_play_and_sample(lab, client, tmp_path: Path):
    agent = train(lab, client, "agent")
    generator = train(lab, client, "generator")
    assert lab("promote", f"run={agent}", "name=cartpole", "alias=champion").code == 0
    assert lab("promote", f"run={generator}", "name=moons", "alias=best").code == 0
    by_run = lab("eval", f"run={agent}", "episodes=3")
    by_alias = lab("eval", "model=models:/cartpole@champion", "episodes=3")
    assert by_alias.code == 0 and "version 1" in by_alias.out
    assert by_run.out.split(" (")[0] == by_alias.out.split(" (")[0], "the same model, the same episodes"
    assert lab("eval", "run=models:/cartpole/1", "episodes=3").out.split(" (")[0] == by_run.out.split(" (")[0]
    gif = tmp_path / "champion.gif"
    assert lab("play", "model=models:/cartpole@champion", f"out={gif}").code == 0 and gif.stat().st_size > 0
    by_run_samples, by_alias_samples = tmp_path / "a.npy", tmp_path / "b.npy"
    assert lab("sample", f"run={generator}", "n=16", f"out={by_run_samples}").code == 0
    assert lab("sample", "model=models:/moons@best", "n=16", f"out={by_alias_samples}").code == 0
    np.testing.assert_array_equal(np.load(by_run_samples), np.load(by_alias_samples))
    # A second promotion moves the alias; the first version stays addressable.
    assert lab("promote", f"run={generator}", "name=cartpole", "alias=champion").code == 0
    moved = lab("eval", "model=models:/cartpole@champion")
    assert moved.code == 0 and "version 2" in moved.out and "validation split" in moved.out


MISTAKES = [
    (("eval", "model=models:/nothing@champion"), "no registered model 'nothing'"),
    (("eval", "model=models:/cartpole@gone"), "has no such alias (aliases: @champion)"),
    (("eval", "model=models:/cartpole"), "expected models:/NAME@ALIAS or models:/NAME/VERSION"),
    (("eval", "model=abc123"), "for a run id, use run="),
    (("eval", "model=models:/cartpole@champion", "run=abc"), "not both"),
    (("play", "model=models:/cartpole/7"), "has no such version"),
    (("promote", "name=x"), "missing run="),
    (("promote", "run=RUN"), "missing name="),
    (("promote", "run=RUN", "name=bad name"), "name=bad name: letters, digits"),
    (("promote", "run=RUN", "name=x", "alias=latest"), "reserved by MLflow"),
    (("promote", "run=RUN", "name=x", "stage=prod"), "unknown key 'stage'"),
    (("promote", "run=RUN", "name=x", "alais=champion"), "unknown key 'alais' for lab promote (did you mean "
                                                         "'alias'?); valid keys: run, name, alias"),
    (("promote", "run=0123456789abcdef", "name=x"), "unknown run id"),
]


def test_registry_mistakes_are_refused(lab, client):
    run_id = train(lab, client, "agent")
    assert lab("promote", f"run={run_id}", "name=cartpole", "alias=champion").code == 0
    for args, message in MISTAKES:
        result = lab(*(arg.replace("RUN", run_id) for arg in args))
        assert result.code == 2 and message in result.err, (args, result.err)
        assert result.err.count("\n") == 1, result.err
    assert len(client.search_model_versions()) == 1, "nothing registered by a refused command"


def test_a_run_without_a_model_cannot_be_promoted(lab, client, with_toy_plugin):
    assert lab("run", "plugin=toy", "env=Toy", "steps=10", "progress=false").code == 0
    run_id = only_run(client, "toy-Toy-v0").info.run_id
    result = lab("promote", f"run={run_id}", "name=toy")
    assert result.code == 2 and "has no MLflow model at model/pyfunc" in result.err


def test_rerun_reproduces_a_dqn_run_exactly_and_links_to_it(lab, client):
    args = ["plugin=dqn", "env=CartPole", "steps=1500", "eval_every=500", "eval_episodes=5", "gif=false",
            "seed=3", "device=cpu", "progress=false"]
    assert lab("run", *args).code == 0
    (source,) = client.search_runs([client.get_experiment_by_name("dqn-CartPole-v1").experiment_id])
    result = lab("rerun", source.info.run_id)
    assert result.code == 0, result.err
    runs = client.search_runs([source.info.experiment_id])
    (again,) = [run for run in runs if run.info.run_id != source.info.run_id]
    assert again.data.tags["lab.rerun_of"] == source.info.run_id
    assert again.data.params == source.data.params
    history = {run.info.run_id: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id,
                                                                                      "eval/mean_return")]
               for run in (source, again)}
    assert history[source.info.run_id] == history[again.info.run_id] and len(history[again.info.run_id]) == 3


def test_rerun_refuses_other_versions_unless_forced(lab, client):
    assert lab("run", *RUNS["agent"], "progress=false").code == 0
    (source,) = client.search_runs([client.get_experiment_by_name("dqn-CartPole-v1").experiment_id])
    run_id = source.info.run_id
    client.set_tag(run_id, "lab.plugin.version", "0.0.1")
    result = lab("rerun", run_id)
    assert result.code == 2 and "plugin 'dqn' was lablearn 0.0.1, installed is lablearn 0.1.0" in result.err
    assert "force=true" in result.err and len(client.search_runs([source.info.experiment_id])) == 1
    for args, message in [((run_id, "lr=0.1"), "only device, threads, progress, nproc"),
                          ((run_id, "force=maybe"), "force=maybe: expected true or false"),
                          (("0123456789abcdef",), "unknown run id")]:
        refused = lab("rerun", *args)
        assert refused.code == 2 and message in refused.err, refused.err
    assert lab("rerun", run_id, "force=true").code == 0
    assert len(client.search_runs([source.info.experiment_id])) == 2
