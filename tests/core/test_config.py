"""The config system: override grammar, layering, types, presets, and every kind of bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.core.config import load_config_file, parse_overrides, resolve
from lab.core.errors import ConfigError
from lab.core.loading import load_registry, make_plugin_manager
from lab.core.options import RUNNER_KEYS


@pytest.fixture(scope="module")
def registry():
    return load_registry(make_plugin_manager(entry_points=False))


def test_overrides_use_hydra_grammar():
    values = parse_overrides(["lr=1e-3", "net_arch=[64,64]", "experiment=null", "normalize=true", "seed=3",
                              "run_name='my run'", "steps=5e4"])
    assert values == {"lr": 0.001, "net_arch": [64, 64], "experiment": None, "normalize": True, "seed": 3,
                      "run_name": "my run", "steps": 50000.0}


@pytest.mark.parametrize("bad", ["lr", "=3", "a==b", "steps=[1,", " =1"])
def test_malformed_overrides_are_refused(bad):
    with pytest.raises(ConfigError, match="malformed override"):
        parse_overrides([bad])


def test_several_values_are_a_sweep_only_where_runs_expand_them():
    with pytest.raises(ConfigError, match="several values are for `lab run`"):
        parse_overrides(["seed=0,1,2"])
    parsed = parse_overrides(["seed=range(0,3)", "lr=1e-3,3e-3", "steps=100"], sweeps=True)
    assert parsed["seed"].values == (0, 1, 2) and parsed["seed"].texts == ("0", "1", "2")
    assert parsed["lr"].values == (1e-3, 3e-3) and parsed["steps"] == 100


def test_layers_defaults_preset_file_cli(registry, tmp_path: Path):
    file = tmp_path / "exp.yaml"
    file.write_text("plugin: ppo\nenv: CartPole\nseed: 7\nn_epochs: 5\nlr: 0.01\n")
    config = resolve(registry, {"lr": 0.02}, load_config_file(str(file)))
    by_key = {f.key: f for f in config.fields}
    assert config.target == "CartPole-v1"
    assert config.preset == "zoo:ppo/CartPole-v1"
    assert (by_key["lr"].value, by_key["lr"].source) == (0.02, "cli")  # CLI beats file beats preset
    assert (by_key["n_epochs"].value, by_key["n_epochs"].source) == (5, "file")
    assert (by_key["n_steps"].value, by_key["n_steps"].source) == (32, "preset")
    assert (by_key["vf_coef"].value, by_key["vf_coef"].source) == (0.5, "default")
    assert config.runner.seed == 7 and config.params.lr == 0.02
    assert set(RUNNER_KEYS) <= set(config.as_dict())
    assert all(f.doc for f in config.fields), "every key has a one-line doc"


def test_types_are_coerced_and_checked(registry):
    config = resolve(registry, {"plugin": "dqn", "env": "CartPole", "steps": 5e4, "lr": 1, "run_name": 42})
    assert config.runner.steps == 50000 and isinstance(config.runner.steps, int)
    assert config.params.lr == 1.0 and isinstance(config.params.lr, float)
    assert config.runner.run_name == "42"


def test_env_aliases_are_case_insensitive_and_gym_ids_work(registry):
    assert resolve(registry, {"plugin": "sac", "env": "pendulum"}).target == "Pendulum-v1"
    assert resolve(registry, {"plugin": "ppo", "env": "Acrobot-v1"}).target == "Acrobot-v1"


def test_lab_games_without_a_lab_preset_keep_the_algorithms_defaults(registry):
    config = resolve(registry, {"plugin": "ddpg", "env": "Dock"})  # lab's own game: no Zoo entry, not even default
    assert config.preset == "defaults:ddpg"
    assert config.params.lr == 1e-3 and config.runner.threads == 1


@pytest.mark.parametrize(("values", "message"), [
    ({"plugin": "dqm", "env": "CartPole"}, "unknown plugin 'dqm' (did you mean 'dqn'?)"),
    ({"plugin": "dqn", "env": "CartPol"}, "unknown env 'CartPol' (did you mean 'CartPole'?)"),
    ({"plugin": "dqn"}, "(agent) needs env=NAME"),
    ({"env": "CartPole"}, "missing plugin=NAME"),
    ({"plugin": "dqn", "env": "CartPole", "learning_rat": 1}, "unknown key 'learning_rat'"),
    ({"plugin": "dqn", "env": "CartPole", "sed": 1}, "(did you mean 'seed'?)"),
    ({"plugin": "dqn", "env": "CartPole", "steps": "abc"}, "steps=abc: expected an integer"),
    ({"plugin": "dqn", "env": "CartPole", "steps": 1.5}, "steps=1.5: expected an integer"),
    ({"plugin": "dqn", "env": "CartPole", "steps": -5}, "steps=-5: must be >= 1"),
    ({"plugin": "dqn", "env": "CartPole", "device": "tpu"}, "device=tpu: valid: auto, cpu, cuda, cuda:N, mps"),
    ({"plugin": "dqn", "env": "CartPole", "gamma": 1.5}, "gamma=1.5: must be between 0 and 1"),
    ({"plugin": "dqn", "env": "CartPole", "net_arch": 64}, "net_arch=64: expected a list"),
    ({"plugin": "dqn", "env": "CartPole", "net_arch": [64, "x"]}, "expected an integer"),
    ({"plugin": "dqn", "env": "CartPole", "activation": "softmax"}, "activation=softmax: valid: tanh, relu"),
    ({"plugin": "dqn", "env": "CartPole", "normalize": "yes"}, "normalize=yes: expected true or false"),
    ({"plugin": "dqn", "env": "CartPole", "data": "digits"}, "data= does not apply"),
    ({"plugin": "dqn", "env": "Pendulum"}, "agents that fit: ppo, a2c, sac, td3, ddpg"),
    ({"plugin": "sac", "env": "CartPole"}, "sac needs a Box action space and CartPole-v1 has Discrete(2)"),
])
def test_bad_values_name_the_key_and_what_is_valid(registry, values, message):
    with pytest.raises(ConfigError) as error:
        resolve(registry, values)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_unknown_key_lists_valid_keys(registry):
    with pytest.raises(ConfigError, match="valid keys: plugin, env, data, seed"):
        resolve(registry, {"plugin": "ppo", "env": "CartPole", "nope": 1})


@pytest.mark.parametrize(("text", "message"), [
    ("- a\n- b\n", "must be a mapping"),
    ("lr: [1\n", "not valid YAML"),
    ("config: other.yaml\n", "may not itself contain"),
])
def test_bad_config_files(tmp_path: Path, text, message):
    file = tmp_path / "bad.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config_file(str(file))


def test_missing_config_file():
    with pytest.raises(ConfigError, match="config file not found: nowhere.yaml"):
        load_config_file("nowhere.yaml")


@pytest.mark.parametrize("args", [["seed=1", "seed=2"], ["plugin=dqn", "env=CartPole", "plugin=ppo"],
                                  ["seed=1", "+seed=2"], ["seed=0,1", "seed=2"]])
def test_a_key_given_twice_is_refused(args):
    """The last would win silently: `plugin=dqn ... plugin=ppo` trained ppo."""
    with pytest.raises(ConfigError, match="is given twice; give each key once"):
        parse_overrides(args, sweeps=True)


def test_processes_lab_starts_get_each_key_once():
    """Child runs, sweep trials and data-parallel ranks get progress=false in place of the user's progress=."""
    from lab.core.config import replace_override

    assert replace_override(["run", "plugin=toy", "progress=true", "seed=1"], "progress", "false") == [
        "run", "plugin=toy", "seed=1", "progress=false"]
    assert replace_override(["run", "plugin=toy"], "progress", "false") == ["run", "plugin=toy", "progress=false"]
