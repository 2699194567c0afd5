"""The SB3 adapter on its own: config mapping, save/load round trips, compatibility checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lab.core.config import resolve
from lab.core.loading import load_registry, make_plugin_manager
from lab.training.build import build_context

ALGOS_ENVS = [("dqn", "CartPole"), ("ppo", "CartPole"), ("a2c", "Acrobot"), ("sac", "Pendulum"),
              ("td3", "Pendulum"), ("ddpg", "Pendulum"), ("ppo", "MountainCarContinuous"), ("ars", "Pendulum"),
              ("qrdqn", "CartPole"), ("tqc", "Pendulum"), ("trpo", "Acrobot"), ("crossq", "Pendulum"),
              ("ppo_lstm", "CartPole"), ("ppo_lstm", "PendulumNoVel-v1")]
OFF_POLICY = {"dqn", "sac", "td3", "ddpg", "qrdqn", "tqc", "crossq"}
# Small networks where the defaults are large (CrossQ's 1024-unit critics, a 256-unit LSTM): the round trip is the
# point here, not the sizes.
SMALL = {"crossq": {"critic_arch": [64, 64]}, "ppo_lstm": {"lstm_hidden_size": 16, "n_steps": 64},
         "tqc": {"net_arch": [64, 64]}}


@pytest.fixture(scope="module")
def registry():
    return load_registry(make_plugin_manager(entry_points=False))


def build(registry, plugin: str, env: str, seed: int, training: bool = True, **keys):
    config = resolve(registry, {"plugin": plugin, "env": env, "seed": seed, "eval_episodes": 2, **keys})
    return config.plugin.build(build_context(config, "cpu", training=training))


@pytest.mark.parametrize(("plugin", "env"), ALGOS_ENVS)
def test_save_load_round_trip_gives_identical_actions(registry, tmp_path: Path, plugin, env):
    off_policy = {"learning_starts": 0} if plugin in OFF_POLICY else {}
    small = SMALL.get(plugin, {})
    trained = build(registry, plugin, env, seed=1, **off_policy, **small)
    trained.train(300, lambda step, boundary=True: True)
    trained.save(tmp_path / "model")
    assert (tmp_path / "model" / "policy.safetensors").is_file()
    fresh = build(registry, plugin, env, seed=2, training=False, **small)
    fresh.load(tmp_path / "model")
    observations = np.stack([trained.env.observation_space.sample() for _ in range(16)])
    if trained.config.normalize:
        observations = trained.env.normalize_obs(observations)
        assert np.allclose(fresh.env.obs_rms.mean, trained.env.obs_rms.mean)
    # A recurrent policy's actions depend on its state too: the same from a start, and one step on.
    starts = np.ones(len(observations), dtype=bool)
    expected, expected_state = trained.model.predict(observations, episode_start=starts, deterministic=True)
    actual, actual_state = fresh.model.predict(observations, episode_start=starts, deterministic=True)
    np.testing.assert_array_equal(actual, expected)
    if expected_state is not None:
        goes_on = ~starts
        expected, _ = trained.model.predict(observations[::-1], expected_state, goes_on, deterministic=True)
        actual, _ = fresh.model.predict(observations[::-1], actual_state, goes_on, deterministic=True)
        np.testing.assert_array_equal(actual, expected)


def test_loading_weights_of_another_architecture_is_refused(registry, tmp_path: Path):
    small = build(registry, "ppo", "CartPole", seed=0, net_arch=[8])
    small.save(tmp_path / "small")
    big = build(registry, "ppo", "CartPole", seed=0, net_arch=[64, 64], training=False)
    with pytest.raises(Exception, match="size mismatch|do not fit"):
        big.load(tmp_path / "small")


def test_presets_map_onto_sb3_arguments(registry):
    dqn = build(registry, "dqn", "CartPole", seed=0)
    assert dqn.model.learning_rate == pytest.approx(2.3e-3)
    assert dqn.model.train_freq.frequency == 256 and dqn.model.gradient_steps == 128
    assert dqn.model.policy.net_arch == [256, 256]
    ppo = build(registry, "ppo", "CartPole", seed=0)
    assert ppo.env.num_envs == 8 and ppo.model.n_steps == 32 and ppo.model.n_epochs == 20
    assert ppo.model.lr_schedule(1.0) == pytest.approx(1e-3) and ppo.model.lr_schedule(0.5) == pytest.approx(5e-4)
    assert ppo.model.clip_range(0.5) == pytest.approx(0.1)
    td3 = build(registry, "td3", "Pendulum", seed=0)
    assert td3.model.action_noise is not None and td3.model.learning_starts == 10_000
    assert td3.target_score is None and dqn.target_score == 475


@pytest.mark.parametrize("backbone", ["mlp", "transformer", "gru"])
def test_a_backbone_plugin_is_the_agents_features_extractor(registry, tmp_path: Path, backbone):
    agent = build(registry, "ppo", "CartPole", seed=0, backbone=backbone)
    assert type(agent.model.policy.features_extractor.module).__module__ == "lab_backbones.networks"
    agent.train(256, lambda step, boundary=True: True)
    agent.save(tmp_path / "model")
    fresh = build(registry, "ppo", "CartPole", seed=1, backbone=backbone, training=False)
    fresh.load(tmp_path / "model")
    observations = np.stack([agent.env.observation_space.sample() for _ in range(8)])
    np.testing.assert_array_equal(fresh.model.predict(observations, deterministic=True)[0],
                                  agent.model.predict(observations, deterministic=True)[0])


def test_off_policy_networks_get_their_own_backbone_weights(registry):
    agent = build(registry, "sac", "Pendulum", seed=0, backbone="mlp")
    policy = agent.model.policy
    modules = [policy.actor.features_extractor.module, policy.critic.features_extractor.module,
               policy.critic_target.features_extractor.module]
    assert len({id(m) for m in modules}) == 3


def test_unknown_backbone_is_refused_with_the_closest_name(registry):
    from lab.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"backbone=transfomer: not an installed backbone plugin \(did you mean "
                                          r"'transformer'\?\)"):
        resolve(registry, {"plugin": "ppo", "env": "CartPole", "backbone": "transfomer"})
