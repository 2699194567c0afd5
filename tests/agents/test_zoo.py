"""The RL Baselines3 Zoo's own hyperparameter files as presets: every entry for an env lab can make offline loads
as a valid lab config, Zoo keys translate into lab keys, and what cannot be translated, an env keyword the env
does not take or a wrapper that does not exist is refused before any run exists."""

from __future__ import annotations

import gymnasium
import pytest

from lab.core.config import resolve
from lab.core.errors import ConfigError
from lab.core.loading import load_registry, make_plugin_manager
from lab_agents import ALGORITHMS, configs, zoo

# The Zoo's entries whose env exists offline (rl-zoo3 2.9.2): classic control, Box2D, the `atari` entries, the
# *NoVel tasks and `default`, 95 of the 283 the Zoo ships. The rest are for MuJoCo, PyBullet, MiniGrid, robotics,
# highway-env and other packages' envs (HER's goal envs among them), and the Zoo's own LunarLander*NoVel-v2
# entries, whose envs the Zoo itself no longer registers (it registers -v3).
OFFLINE_ENTRIES = 95
# The one offline entry lab refuses, and why: its wrapper is an autoencoder the Zoo loads from a pickle it does
# not ship (logs/car_racing_rgb_160.pkl), from a package that does not exist on the index (ae.wrapper).
REFUSED = {("sac", "CarRacing-v3"): "ae.wrapper.AutoencoderWrapper"}
STAND_IN = {zoo.ATARI_ENTRY: "ALE/Pong-v5"}  # the env an `atari` entry is tried on


@pytest.fixture(scope="module")
def registry():
    return load_registry(make_plugin_manager(entry_points=False))


def offline_env(registry, algo: str, name: str) -> str | None:
    """The env an entry is for, if lab can make it here (None: its env needs a package that is not installed)."""
    if name == zoo.DEFAULT_ENTRY:  # an env of the right kind that no file has an entry for
        discrete = "Discrete" in ALGORITHMS[algo][1]
        env_id = "FrozenLake-v1" if discrete else "PendulumNoVel-v1"
        assert env_id not in zoo.entries(algo)
        name = env_id
    env_id = STAND_IN.get(name, name)
    spec = registry.env_spec(env_id)
    if spec is not None and spec.setup:
        from lab.core.text import import_object

        import_object(spec.setup)()
    try:
        gymnasium.make(env_id).close()
    except Exception:
        return None
    return env_id


def test_every_zoo_entry_for_an_env_that_exists_offline_loads_as_a_lab_config(registry):
    loaded, refused = [], {}
    for algo, name, _ in zoo.all_entries():
        env_id = offline_env(registry, algo, name) if algo in ALGORITHMS else None
        if env_id is None:
            continue
        try:
            config = resolve(registry, {"plugin": algo, "env": env_id}, training=False)
        except ConfigError as e:
            refused[(algo, name)] = str(e)
            continue
        assert config.preset == f"zoo:{algo}/{name}"
        assert config.runner.steps == int(float(zoo.entries(algo)[name]["n_timesteps"]))
        loaded.append((algo, name))
    assert set(refused) == set(REFUSED), refused
    assert all(REFUSED[key] in reason for key, reason in refused.items()), refused
    assert len(loaded) + len(refused) == OFFLINE_ENTRIES, (len(loaded), len(refused))
    assert {algo for algo, _ in loaded} == set(ALGORITHMS), "every agent has Zoo presets"


def test_zoo_keys_translate_into_lab_keys():
    entry = {"n_timesteps": 1e6, "policy": "MlpPolicy", "learning_rate": "lin_7.3e-4", "clip_range": 0.2,
             "normalize": "dict(norm_obs=True, norm_reward=False)", "n_envs": 4,
             "policy_kwargs": "dict(log_std_init=-2, ortho_init=False, activation_fn=nn.GELU, "
                              "net_arch=dict(pi=[256], vf=[128]), )",
             "env_wrapper": "sb3_contrib.common.wrappers.TimeFeatureWrapper", "frame_stack": 2}
    assert zoo.translate(entry, configs.PPOConfig) == {
        "steps": 1_000_000, "lr": 7.3e-4, "lr_schedule": "linear", "clip_range": 0.2, "clip_schedule": "constant",
        "normalize": True, "norm_obs": True, "norm_reward": False, "n_envs": 4, "log_std_init": -2,
        "ortho_init": False, "activation": "gelu", "net_arch": [256], "critic_arch": [128],
        "env_wrapper": ["sb3_contrib.common.wrappers.TimeFeatureWrapper"], "frame_stack": 2}
    td3 = zoo.translate({"noise_type": "ornstein-uhlenbeck", "noise_std": 0.5, "train_freq": [1, "step"],
                         "policy_kwargs": "dict(net_arch=[400, 300])"}, configs.TD3Config)
    assert td3 == {"action_noise": "ornstein_uhlenbeck", "noise_std": 0.5, "train_freq": 1, "net_arch": [400, 300],
                   "critic_arch": [400, 300]}
    assert zoo.translate({"policy": "MlpPolicy"}, configs.TD3Config) == {"action_noise": "none"}, \
        "no noise_type in the Zoo's entry: no noise, as the Zoo trains it"
    assert zoo.translate({"policy": "LinearPolicy"}, configs.ARSConfig) == {"policy": "linear"}
    assert zoo.translate({"ent_coef": 0.1}, configs.SACConfig)["ent_coef"] == "0.1"
    a2c = zoo.translate({"policy_kwargs": "dict(optimizer_class=RMSpropTFLike, optimizer_kwargs=dict(eps=1e-5))"},
                        configs.A2CConfig)
    assert a2c == {"rmsprop_tf_like": True}


@pytest.mark.parametrize(("entry", "config", "named"), [
    ({"callback": "rl_zoo3.callbacks.ParallelTrainCallback"}, configs.SACConfig, "callback"),
    ({"policy_kwargs": "dict(squash_output=True)"}, configs.PPOConfig, "policy_kwargs.squash_output"),
    ({"policy": "MultiInputPolicy"}, configs.SACConfig, "policy='MultiInputPolicy'"),
    ({"train_freq": [1, "episode"]}, configs.SACConfig, "train_freq"),
    ({"normalize": "dict(norm_obs=True, clip_obs=5.0)"}, configs.PPOConfig, "clip_obs"),
    ({"learning_rate": "exp_0.1"}, configs.PPOConfig, "learning_rate='exp_0.1'"),
    ({"noise_type": "pink"}, configs.TD3Config, "noise_type='pink'"),
    ({"n_quantiles": 5}, configs.PPOConfig, "n_quantiles"),
    # the Zoo evaluates these strings as Python; lab reads literals only and runs nothing
    ({"policy_kwargs": "__import__('os').system('touch pwned')"}, configs.PPOConfig, "not a literal"),
    ({"normalize": "dict(norm_obs=open('x').read())"}, configs.PPOConfig, "not a literal"),
])
def test_a_zoo_key_lab_cannot_translate_is_named(entry, config, named):
    with pytest.raises(zoo.Untranslatable, match=None) as refused:
        zoo.translate({"n_timesteps": 1000, **entry}, config)
    assert named in str(refused.value)


def test_an_untranslatable_preset_refuses_the_run_with_one_line(lab, runs, monkeypatch: pytest.MonkeyPatch):
    bad = {"CartPole-v1": {"n_timesteps": 1000, "policy": "MlpPolicy", "callback": "my.Callback"}}
    monkeypatch.setattr(zoo, "entries", lambda algo: bad if algo == "dqn" else {})
    result = lab("run", "plugin=dqn", "env=CartPole", "progress=false")
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1
    assert "zoo:dqn/CartPole-v1" in result.err and "callback" in result.err
    assert runs() == []


@pytest.mark.parametrize(("keys", "message"), [
    (["plugin=ppo", "env=CartPole", "env_kwargs.gravity=3"],
     "env_kwargs.gravity: CartPole-v1 does not take 'gravity'; valid: sutton_barto_reward"),
    (["plugin=ppo", "env=CartPole", "env_wrapper=[NoSuchWrapper]"], "wrapper 'NoSuchWrapper' does not exist"),
    (["plugin=ppo", "env=CartPole", "env_wrapper=[os.system]"], "outside the modules lab takes wrappers from"),
    (["plugin=ppo", "env=CartPole", "env_wrapper=[{TimeFeatureWrapper:1}]"], "valid: a list of wrapper names"),
    (["plugin=dqn", "env=LunarLander", "env_kwargs.continuous=true"],
     "dqn needs a Discrete action space and LunarLander-v3 with env_kwargs={'continuous': True} has Box"),
    (["plugin=ppo", "env=CartPole", "env_kwargs=3"], "env_kwargs=3: expected a mapping"),
    (["plugin=ppo", "env=CartPole", "frame_stack=0"], "frame_stack=0: must be >= 1"),
    (["plugin=ppo", "env=CartPole", "norm_obs=maybe"], "norm_obs=maybe: expected true or false"),
])
def test_bad_env_keys_are_refused_before_a_run_exists(lab, runs, keys, message):
    result = lab("run", *keys, "progress=false")
    assert result.code == 2, result.out
    assert message in result.err and len(result.err.strip().splitlines()) == 1
    assert runs() == []


def test_show_names_the_zoo_entry_and_user_keys_still_win(lab):
    shown = lab("show", "plugin=tqc", "env=Pendulum", "lr=0.01", "env_kwargs.g=9.0")
    assert shown.code == 0, shown.err
    assert "zoo:tqc/Pendulum-v1" in shown.out and "rl-zoo3 2.9.2" in shown.out
    assert "0.01" in shown.out and "{'g': 9.0}" in shown.out


def test_env_keys_reach_the_envs(registry):
    from lab.training.build import build_context

    config = resolve(registry, {"plugin": "ppo", "env": "LunarLander", "env_kwargs": {"continuous": True},
                                "env_wrapper": ["TimeFeatureWrapper"], "frame_stack": 3, "normalize": True,
                                "norm_reward": False, "n_envs": 2})
    agent = config.plugin.build(build_context(config, "cpu", training=True))
    assert type(agent.env.action_space).__name__ == "Box", "env_kwargs.continuous=true made it continuous"
    assert agent.env.observation_space.shape == (3 * 9,), "8 values + the time feature, 3 frames stacked"
    from lab_agents.sb3 import find_normalizer

    normalizer = find_normalizer(agent.env)
    assert normalizer is not None and normalizer.norm_obs and not normalizer.norm_reward
