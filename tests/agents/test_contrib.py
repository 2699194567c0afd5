"""What the sb3-contrib agents need beyond the SB3 ones: a recurrent policy's state in checkpoints, ARS stopping
when the runner says so, and each algorithm getting the keys lab declares for it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lab.core.config import resolve
from lab.core.loading import load_registry, make_plugin_manager
from lab.training.build import build_context, seed_everything


@pytest.fixture(scope="module")
def registry():
    return load_registry(make_plugin_manager(entry_points=False))


def build(registry, plugin: str, env: str, **keys):
    config = resolve(registry, {"plugin": plugin, "env": env, "seed": 3, "eval_episodes": 2, **keys})
    seed_everything(3)
    return config.plugin.build(build_context(config, "cpu", training=True))


def weights(agent) -> dict[str, np.ndarray]:
    return {name: tensor.detach().numpy().copy() for name, tensor in agent.model.policy.state_dict().items()}


def keep_going(step: int, boundary: bool = True) -> bool:
    return True


RECURRENT = {"n_steps": 32, "n_envs": 2, "batch_size": 32, "lstm_hidden_size": 8, "n_epochs": 2}
WRAPPED = {"n_steps": 32, "n_envs": 2, "batch_size": 32, "n_epochs": 2, "frame_stack": 3, "normalize": True,
           "env_wrapper": ["TimeFeatureWrapper"]}


SDE = {"use_sde": True, "sde_sample_freq": -1, "learning_starts": 32, "net_arch": [32]}


@pytest.mark.parametrize(("plugin", "env", "keys"), [("ppo_lstm", "CartPoleNoVel-v1", RECURRENT),
                                                     ("ppo", "Pendulum", WRAPPED),  # the Zoo's preset: gSDE
                                                     ("sac", "Pendulum", SDE)])
def test_an_agent_resumes_exactly_where_it_stopped(registry, tmp_path: Path, plugin, env, keys):
    """Everything at the checkpoint (mid-episode) is part of what resumes: a recurrent policy's LSTM state, the
    frames stacked so far, a wrapper's own counters, gSDE's exploration noise. The resumed agent ends with the
    same weights as one that never stopped. (The Zoo's CartPoleNoVel preset decays lr and clip range linearly
    over the budget, so the resumed part must also know where in the budget it is.)"""
    straight = build(registry, plugin, env, **keys)
    straight.train(192, keep_going)

    first = build(registry, plugin, env, **keys)
    saved = {}

    def checkpoint_then_stop(step: int, boundary: bool = True) -> bool:
        """What the runner does on Ctrl-C: a checkpoint at the next step boundary, then stop."""
        if boundary and step >= 64 and not saved:
            first.checkpoint(tmp_path / "checkpoint")
            lstm = getattr(first.model, "_last_lstm_states", None)
            saved["lstm"] = [tensor.clone() for tensor in lstm.pi] if lstm is not None else []
        return not saved

    first.train(192, checkpoint_then_stop)
    resumed = build(registry, plugin, env, **keys)
    resumed.restore(tmp_path / "checkpoint")
    if saved["lstm"]:
        for mine, theirs in zip(resumed.model._last_lstm_states.pi, saved["lstm"], strict=True):
            torch.testing.assert_close(mine, theirs, rtol=0, atol=0)
        assert bool(torch.any(saved["lstm"][0] != 0)), "the state is mid-episode, not a fresh one"
    resumed.train(192, keep_going)

    expected, actual = weights(straight), weights(resumed)
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)


def test_ars_stops_when_the_runner_says_so(registry):
    agent = build(registry, "ars", "CartPole", n_delta=2)
    calls = []

    def stop_after_100(step: int, boundary: bool = True) -> bool:
        calls.append(step)
        return step < 100

    agent.train(50_000, stop_after_100)
    assert 100 <= agent.model.num_timesteps < 1000, "ARS ignores a callback's False: lab stops it all the same"


@pytest.mark.parametrize(("plugin", "env", "keys", "expected"), [
    ("qrdqn", "CartPole", {"n_quantiles": 7}, {"policy.n_quantiles": 7}),
    ("tqc", "Pendulum", {"n_quantiles": 5, "n_critics": 3, "top_quantiles_to_drop_per_net": 1},
     {"policy.critic.n_quantiles": 5, "policy.critic.n_critics": 3, "top_quantiles_to_drop_per_net": 1}),
    ("trpo", "CartPole", {"cg_max_steps": 7, "n_critic_updates": 3}, {"cg_max_steps": 7, "n_critic_updates": 3}),
    ("crossq", "Pendulum", {"policy_delay": 5, "critic_arch": [32]}, {"policy_delay": 5}),
    ("ars", "CartPole", {"policy": "linear", "n_delta": 3, "n_top": 2}, {"n_delta": 3, "n_top": 2}),
    ("ppo_lstm", "CartPole", {"lstm_hidden_size": 12}, {"policy.lstm_actor.hidden_size": 12}),
    ("a2c", "CartPole", {"rmsprop_tf_like": True}, {"policy.optimizer.__class__.__name__": "RMSpropTFLike"}),
])
def test_each_algorithm_gets_its_own_keys(registry, plugin, env, keys, expected):
    agent = build(registry, plugin, env, **keys)
    for dotted, value in expected.items():
        target = agent.model
        for part in dotted.split("."):
            target = getattr(target, part)
        assert target == value, dotted


def test_linear_ars_has_no_hidden_layer_and_crossq_its_own_critic_sizes(registry):
    linear = build(registry, "ars", "CartPole", policy="linear")
    assert type(linear.model.policy).__name__ == "ARSLinearPolicy"
    crossq = build(registry, "crossq", "Pendulum", net_arch=[16], critic_arch=[24])
    first_critic_layer = next(m for m in crossq.model.policy.critic.modules() if isinstance(m, torch.nn.Linear))
    assert first_critic_layer.out_features == 24
