"""What lab_agents checks before a run exists (lab_agents.spaces): the memory estimate is SB3's own allocation,
and what SB3 cannot take is refused in one line rather than by an assertion inside SB3."""

from __future__ import annotations

import pytest

from lab.core.config import resolve
from lab.core.errors import ConfigError
from lab.core.loading import load_registry, make_plugin_manager
from lab.training.build import build_context
from lab_agents import spaces


@pytest.fixture(scope="module")
def registry():
    return load_registry(make_plugin_manager(entry_points=False))


def allocated(model) -> int:
    """Bytes of the arrays SB3 allocated for the agent's replay or rollout buffer."""
    buffer = getattr(model, "replay_buffer", None) or model.rollout_buffer
    return sum(value.nbytes for value in vars(buffer).values() if hasattr(value, "nbytes"))


@pytest.mark.parametrize(("plugin", "env", "keys"), [
    ("dqn", "CartPole", {"buffer_size": 1000, "n_envs": 1}),
    ("dqn", "CartPole", {"buffer_size": 1001, "n_envs": 4}),
    ("sac", "Pendulum", {"buffer_size": 500}),
    ("td3", "MountainCarContinuous", {"buffer_size": 500, "n_envs": 2}),
    ("dqn", "Pong", {"buffer_size": 100}),  # frames as lab preprocesses them: 84x84, 4 stacked
    ("ppo", "CartPole", {"n_steps": 16, "n_envs": 2}),
    ("a2c", "Pendulum", {"n_steps": 5, "n_envs": 3}),
])
def test_the_memory_estimate_is_what_sb3_allocates(registry, plugin, env, keys):
    config = resolve(registry, {"plugin": plugin, "env": env, "seed": 0, **keys})
    agent = config.plugin.build(build_context(config, "cpu"))
    _, steps, per_step = spaces._buffer(config.params, config.target)
    assert steps * per_step == allocated(agent.model)


def test_a_buffer_larger_than_the_memory_available_is_refused(registry, monkeypatch):
    monkeypatch.setattr(spaces, "available_memory", lambda: 52 * 1000)
    resolve(registry, {"plugin": "dqn", "env": "CartPole", "buffer_size": 1000})
    with pytest.raises(ConfigError, match=r"buffer_size=1001: its buffer needs about 52.1 kB \(1,001 steps x 52 "
                                          r"bytes .*\) and this machine has 52.0 kB available; valid: "
                                          r"buffer_size <= 1,000$"):
        resolve(registry, {"plugin": "dqn", "env": "CartPole", "buffer_size": 1001})
    # Only training needs the memory: a logged run's model is rebuilt to evaluate with a buffer of one.
    resolve(registry, {"plugin": "dqn", "env": "CartPole", "buffer_size": 1001}, training=False)


@pytest.mark.parametrize(("plugin", "env", "message"), [
    ("dqn", "Blackjack-v1", "Blackjack-v1 has a Tuple observation space"),
    ("ppo", "Blackjack-v1", "Blackjack-v1 has a Tuple observation space"),
    ("sac", "CartPole", "sac needs a Box action space and CartPole-v1 has Discrete(2)"),
])
def test_spaces_sb3_cannot_take_are_refused(registry, plugin, env, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve(registry, {"plugin": plugin, "env": env})
