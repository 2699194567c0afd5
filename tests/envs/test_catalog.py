"""The env catalog: registration through the hook, aliases, `lab envs`, and agent/env compatibility."""

from __future__ import annotations

import json

import gymnasium
import pytest

import lab
from lab.api import EnvSpec, hookimpl
from lab.core.errors import ConfigError
from lab.core.loading import load_registry, make_plugin_manager
from lab.core.registry import Provenance

OUR_GAMES = {"lab/Snake-v0": "Snake", "lab/Maze-v0": "Maze", "lab/Dock-v0": "Dock"}
DISCRETE_AGENTS = ["dqn", "ppo", "a2c", "ars", "qrdqn", "trpo", "ppo_lstm"]
CONTINUOUS_AGENTS = ["ppo", "a2c", "sac", "td3", "ddpg", "ars", "tqc", "trpo", "crossq", "ppo_lstm"]


@pytest.fixture(scope="module")
def registry():
    return load_registry(make_plugin_manager(entry_points=False))


@pytest.mark.parametrize(("name", "env_id"), [
    ("Snake", "lab/Snake-v0"), ("snake", "lab/Snake-v0"), ("lab/Maze-v0", "lab/Maze-v0"), ("Dock", "lab/Dock-v0"),
    ("Pong", "ALE/Pong-v5"), ("breakout", "ALE/Breakout-v5"), ("CartPole", "CartPole-v1"),
    ("LunarLander", "LunarLander-v3"), ("Taxi-v4", "Taxi-v4"),
    ("ALE/Tetris-v5", "ALE/Tetris-v5"),  # not aliased: found once ale-py has registered its games
])
def test_aliases_and_ids_resolve_to_makeable_envs(registry, name, env_id):
    assert registry.resolve_env(name) == env_id
    gymnasium.make(env_id).close()  # resolving made the id known to gymnasium


def test_unknown_env_is_refused_with_a_suggestion(registry):
    with pytest.raises(ConfigError, match=r"unknown env 'Snak'.*did you mean 'Snake'.*lab envs"):
        registry.resolve_env("Snak")


def test_our_games_are_registered_by_the_hook_with_thresholds(registry):
    for env_id, alias in OUR_GAMES.items():
        spec = registry.envs[env_id].spec
        assert spec.aliases == (alias,) and spec.family == "lab" and spec.description
        assert registry.envs[env_id].provenance == Provenance("lablearn", lab.__version__, "lab_envs")
        gym_spec = gymnasium.spec(env_id)
        assert gym_spec.reward_threshold is not None and gym_spec.max_episode_steps > 0


def test_a_third_party_env_is_set_up_only_when_used():
    calls = []

    class ThirdParty:
        @staticmethod
        @hookimpl
        def register_envs(register) -> None:
            register(EnvSpec(id="thirdparty/Walk-v0", aliases=("Walk",), family="toy",
                             setup="tests_env_setup:register"))

    class Clumsy:  # everything it registers is taken back: one bad registration makes the plugin broken
        @staticmethod
        @hookimpl
        def register_envs(register) -> None:
            register(EnvSpec(id="thirdparty/Fine-v0", aliases=("Fine",)))
            register(EnvSpec(id="thirdparty/Walk-v0", aliases=("Walk2",)))  # duplicate id
            register(EnvSpec(id="thirdparty/Bad-v0", setup="not a module"))

    import sys
    import types

    module = types.ModuleType("tests_env_setup")

    def register() -> None:
        calls.append(1)
        gymnasium.register("thirdparty/Walk-v0", entry_point="gymnasium.envs.classic_control:CartPoleEnv",
                           max_episode_steps=50)

    module.register = register
    sys.modules["tests_env_setup"] = module
    try:
        pm = make_plugin_manager(entry_points=False)
        pm.register_source(ThirdParty, "thirdparty", "lab-walk", "1.0")
        pm.register_source(Clumsy, "clumsy", "lab-clumsy", "0.1")
        registry = load_registry(pm)
        assert calls == [], "registration alone never runs setup"
        (problem,) = registry.problems
        assert "'clumsy' (lab-clumsy 0.1)" in problem
        assert "already registered by lab-walk" in problem and "setup must be" in problem
        assert "thirdparty/Fine-v0" not in registry.envs and "fine" not in registry.env_aliases
        assert registry.resolve_env("walk") == "thirdparty/Walk-v0"
        assert registry.resolve_env("Walk") == "thirdparty/Walk-v0"
        assert calls == [1], "setup runs once per process"
        assert registry.plugins_for("agent", "thirdparty/Walk-v0") == DISCRETE_AGENTS
    finally:
        del sys.modules["tests_env_setup"]
        gymnasium.registry.pop("thirdparty/Walk-v0", None)


def test_lab_envs_json_lists_every_registered_env(lab):
    result = lab("envs", "--json")
    assert result.code == 0, result.err
    rows = {row["id"]: row for row in json.loads(result.out)}
    assert set(OUR_GAMES) | {"CartPole-v1", "LunarLander-v3", "BipedalWalker-v3", "ALE/Pong-v5"} <= set(rows)
    assert [row["family"] for row in json.loads(result.out)][:3] == ["lab"] * 3, "our games first"
    for row in rows.values():
        assert row["error"] is None, row
        assert set(row) >= {"aliases", "family", "source", "observation", "action", "reward_threshold", "agents"}
    snake, dock, pong = rows["lab/Snake-v0"], rows["lab/Dock-v0"], rows["ALE/Pong-v5"]
    assert snake["aliases"] == ["Snake"] and snake["source"] == "lablearn" and snake["action"] == "Discrete(3)"
    assert snake["agents"] == DISCRETE_AGENTS
    assert snake["reward_threshold"] == gymnasium.spec("lab/Snake-v0").reward_threshold
    assert dock["agents"] == CONTINUOUS_AGENTS and dock["action_kind"] == "Box"
    assert pong["source"] == "ale-py" and pong["family"] == "atari" and pong["agents"] == DISCRETE_AGENTS
    assert pong["observation"] == "Box(0, 255, (210, 160, 3), uint8)"
    assert rows["CartPole-v1"]["reward_threshold"] == 475.0 and rows["CartPole-v1"]["source"] == "gymnasium"


def test_lab_envs_table(lab):
    result = lab("envs")
    assert result.code == 0, result.err
    assert "lab/Snake-v0" in result.out and "ale-py" in result.out and "dqn, ppo, a2c" in result.out


@pytest.mark.parametrize(("plugin", "env", "fits"), [
    ("dqn", "Dock", CONTINUOUS_AGENTS), ("sac", "Snake", DISCRETE_AGENTS), ("td3", "Maze", DISCRETE_AGENTS),
    ("sac", "Pong", DISCRETE_AGENTS),
])
def test_agent_env_mismatch_is_refused_with_the_agents_that_fit(lab, runs, plugin, env, fits):
    result = lab("run", f"plugin={plugin}", f"env={env}")
    assert result.code == 2
    assert f"plugin {plugin!r} cannot train on" in result.err
    assert f"agents that fit: {', '.join(fits)}" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert runs() == [], "nothing was created"


# ------------------------------------------------------------------------------ `lab envs`: one build, then none


@pytest.fixture
def small_catalog(registry, tmp_path, monkeypatch):
    """Three envs of the catalog (one Atari game), an empty env cache, and every gymnasium.make counted."""
    import dataclasses

    from lab_agents import spaces

    monkeypatch.setenv("LAB_CACHE_DIR", str(tmp_path))
    spaces.spaces_of.cache_clear()  # lab_agents remembers spaces per process
    ids = ("lab/Snake-v0", "CartPole-v1", "ALE/Pong-v5")
    built: list[str] = []
    make = gymnasium.make

    def counting_make(env_id, *args, **kwargs):
        built.append(env_id)
        return make(env_id, *args, **kwargs)

    monkeypatch.setattr(gymnasium, "make", counting_make)
    small = dataclasses.replace(registry, envs={env_id: registry.envs[env_id] for env_id in ids})
    return small, built


def test_lab_envs_builds_each_env_once_then_reads_the_cache(small_catalog, tmp_path):
    from lab.commands.play import env_rows

    small, built = small_catalog
    rows = env_rows(small)
    assert sorted(built) == sorted(small.envs), "each env built once, though two checks look at it too"
    assert (tmp_path / "envs.json").is_file()
    built.clear()
    assert env_rows(small) == rows and built == [], "the second listing builds nothing"
    pong = {row["id"]: row for row in rows}["ALE/Pong-v5"]
    assert pong["agents"] == DISCRETE_AGENTS and pong["observation"] == "Box(0, 255, (210, 160, 3), uint8)"


def test_the_env_cache_is_rebuilt_when_what_it_depends_on_changes(small_catalog, tmp_path, monkeypatch):
    import dataclasses

    from lab.commands import play

    small, built = small_catalog
    rows = play.env_rows(small)
    real_version = play._version
    monkeypatch.setattr(play, "_version", lambda name: "99.0" if name == "gymnasium" else real_version(name))
    built.clear()
    assert play.env_rows(small) == rows and sorted(built) == sorted(small.envs), "a new gymnasium: all rebuilt"

    without_dqn = dataclasses.replace(small, plugins={name: info for name, info in small.plugins.items()
                                                      if name != "dqn"})
    built.clear()  # another set of agent plugins: other agents fit
    assert all("dqn" not in row["agents"] for row in play.env_rows(without_dqn)) and len(built) == 3

    (tmp_path / "envs.json").write_text("{not json")  # a damaged cache is rebuilt, never an error
    built.clear()
    assert play.env_rows(small) == rows and len(built) == 3


def test_a_distribution_visible_twice_is_named_once(monkeypatch):
    """From a source checkout (`python -m lab.cli envs`, or after Ray put the working folder on sys.path) lab is
    seen both as the checkout's lablearn.egg-info and as the installed dist-info: `source` still says lablearn."""
    from lab.commands import play

    monkeypatch.setattr(play, "_distributions", lambda: {"lab_envs": ["lablearn", "lablearn"], "x": ["a", "b"]})
    assert play._distribution_of("lab_envs.snake") == "lablearn"
    assert play._distribution_of("x.y") == "a, b"
    assert play._distribution_of("unknown_top.module") == "unknown_top"
