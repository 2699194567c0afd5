"""No load path of lab unpickles: resume, eval, play, promote, rerun (and sample, for a generator) all work with
``pickle``/``cloudpickle`` loading and ``torch.load(weights_only=False)`` made to fail, for every agent."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import torch

AGENTS = [("dqn", "CartPole"), ("ppo", "CartPole"), ("a2c", "CartPole"), ("sac", "Pendulum"), ("td3", "Pendulum"),
          ("ddpg", "Pendulum"), ("ars", "CartPole"), ("qrdqn", "CartPole"), ("tqc", "Pendulum"), ("trpo", "Pendulum"),
          ("crossq", "Pendulum"), ("ppo_lstm", "CartPole")]
TINY = ["steps=300", "checkpoint_every=100", "eval_every=150", "eval_episodes=1", "progress=false", "gif=false"]
OFF_POLICY = ("dqn", "sac", "td3", "ddpg", "qrdqn", "tqc", "crossq")
# Rollouts within the tiny budget: the presets' are longer than it (TRPO 1024 steps x 2 envs, recurrent PPO 128
# x 8 on CartPole's default entry), and a checkpoint is written at a rollout's start.
SHORT_ROLLOUTS = {"trpo": ["n_steps=64", "n_envs=1"],
                  "ppo_lstm": ["n_steps=32", "n_envs=2", "batch_size=32", "lstm_hidden_size=16"]}
SMALL = {"crossq": ["critic_arch=[64,64]"], "tqc": ["net_arch=[64,64]"]}  # the defaults' 1024-unit critics are slow


class Unpickled(AssertionError):
    pass


@pytest.fixture
def no_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every way of unpickling we know of raises (loading only: saving is harmless)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise Unpickled("something was unpickled")

    class Refused:
        def __init__(self, *args: object, **kwargs: object) -> None:
            refuse()

    for module in (pickle, cloudpickle):
        monkeypatch.setattr(module, "loads", refuse)
        monkeypatch.setattr(module, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", Refused)
    real_torch_load, real_numpy_load = torch.load, np.load

    def torch_load(*args: object, weights_only: bool | None = None, **kwargs: object) -> object:
        if weights_only is False:
            refuse()
        return real_torch_load(*args, weights_only=True, **kwargs)

    def numpy_load(*args: object, allow_pickle: bool = False, **kwargs: object) -> object:
        if allow_pickle:
            refuse()
        return real_numpy_load(*args, allow_pickle=False, **kwargs)

    monkeypatch.setattr(torch, "load", torch_load)
    monkeypatch.setattr(np, "load", numpy_load)


def run_id(output: str) -> str:
    return re.search(r"run id:\s+(\w+)", output).group(1)


@pytest.mark.slow
@pytest.mark.parametrize(("plugin", "env"), AGENTS)
def test_every_load_path_of_an_agent_works_without_unpickling(lab, client, tmp_path: Path, plugin, env,
                                                              no_unpickling):
    extra = ["learning_starts=50", *SMALL.get(plugin, [])] if plugin in OFF_POLICY else SHORT_ROLLOUTS.get(plugin, [])
    trained = lab("run", f"plugin={plugin}", f"env={env}", "seed=1", *TINY, *extra)
    assert trained.code == 0, trained.err
    first = run_id(trained.out)
    checkpoint = client.get_run(first).data.tags["lab.checkpoint"]
    files = {Path(a.path).name for a in client.list_artifacts(first, f"checkpoints/{checkpoint}")}
    assert "training_state.safetensors" in files and not {f for f in files if f.endswith((".zip", ".pkl"))}

    resumed = lab("run", f"resume={first}", "steps=500")
    assert resumed.code == 0, resumed.err
    assert client.get_run(first).info.status == "FINISHED"
    evaluated = lab("eval", f"run={first}", "episodes=1")
    assert evaluated.code == 0, evaluated.err
    played = lab("play", f"run={first}", "episodes=1", f"out={tmp_path / 'play.gif'}")
    assert played.code == 0 and (tmp_path / "play.gif").stat().st_size > 0, played.err
    promoted = lab("promote", f"run={first}", f"name={plugin}-model", "alias=champion")
    assert promoted.code == 0, promoted.err
    assert lab("eval", f"run=models:/{plugin}-model@champion", "episodes=1").code == 0
    rerun = lab("rerun", first, "progress=false")
    assert rerun.code == 0, rerun.err


@pytest.mark.slow
def test_a_generator_samples_and_resumes_without_unpickling(lab, client, tmp_path: Path, no_unpickling):
    trained = lab("run", "plugin=vae", "data=moons", "steps=600", "checkpoint_every=200", "eval_every=300",
                  "progress=false")
    assert trained.code == 0, trained.err
    first = run_id(trained.out)
    assert lab("run", f"resume={first}", "steps=900").code == 0
    sampled = lab("sample", f"run={first}", "n=16", f"out={tmp_path / 'samples.npy'}")
    assert sampled.code == 0 and (tmp_path / "samples.npy").is_file(), sampled.err
