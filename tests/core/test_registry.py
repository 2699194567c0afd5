"""The plugin registry: built-ins and third-party plugins through one API, provenance, and robustness."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from dataclasses import dataclass

import pytest

from lab.api import EnvSpec, Plugin, hookimpl, option
from lab.core.loading import load_registry, make_plugin_manager

AGENTS = {"dqn", "ppo", "a2c", "sac", "td3", "ddpg", "ars", "qrdqn", "tqc", "trpo", "crossq", "ppo_lstm"}
BACKBONES = {"perceptron", "mlp", "cnn", "rnn", "lstm", "gru", "transformer"}
GENERATORS = {"vae", "gan", "diffusion"}
BUILTINS = AGENTS | BACKBONES | GENERATORS


@dataclass
class GoodConfig:
    width: int = option(8, "Width of the thing.")


def plugin_module(name: str, *specs: Plugin, envs: tuple[EnvSpec, ...] = (), fail: bool = False):
    """A module object implementing the hooks, as a third-party package would."""
    module = types.ModuleType(name)

    @hookimpl
    def register_plugins(register):
        if fail:
            raise RuntimeError("boom")
        for spec in specs:
            register(spec)

    @hookimpl
    def register_envs(register):
        for env in envs:
            register(env)

    module.register_plugins = register_plugins
    module.register_envs = register_envs
    return module


def fresh_registry(*modules, sources=None):
    pm = make_plugin_manager(entry_points=False)
    for module in modules:
        package, version = (sources or {}).get(module.__name__, (module.__name__, "1.2.3"))
        pm.register_source(module, module.__name__, package, version)
    return load_registry(pm)


def test_builtin_agents_are_registered_with_provenance():
    registry = fresh_registry()
    assert set(registry.plugins) == BUILTINS
    for info in registry.plugins.values():
        assert info.package == "lablearn" and info.spec.description
        kind = "agent" if info.name in AGENTS else "generator" if info.name in GENERATORS else "backbone"
        assert info.spec.kind == kind
    assert registry.resolve_env("CartPole") == "CartPole-v1"
    assert registry.problems == []


def test_third_party_plugin_goes_through_the_same_api():
    extra = plugin_module("lab_extra", Plugin("extra", "generator", GoodConfig, "lab_extra:build", "An extra."),
                          envs=(EnvSpec("Extra-v0", aliases=("Extra",)),))
    registry = fresh_registry(extra, sources={"lab_extra": ("lab-extra", "0.4.2")})
    info = registry.plugins["extra"]
    assert (info.package, info.version, info.spec.kind) == ("lab-extra", "0.4.2", "generator")
    assert registry.resolve_env("extra") == "Extra-v0"


def test_a_broken_plugin_is_reported_and_the_others_survive():
    broken = plugin_module("lab_broken", fail=True)
    registry = fresh_registry(broken)
    assert set(registry.plugins) == BUILTINS
    assert any("lab_broken" in p and "boom" in p for p in registry.problems)


def test_invalid_registrations_are_refused_with_a_reason():
    @dataclass
    class Reuses:
        seed: int = option(1, "Clashes with the runner's seed.")

    @dataclass
    class Undocumented:
        width: int = 3

    bad = plugin_module(
        "lab_bad",
        Plugin("clash", "agent", Reuses, "m:f", "Reuses a runner key."),
        Plugin("nodoc", "agent", Undocumented, "m:f", "No doc."),
        Plugin("kindless", "robot", GoodConfig, "m:f", "Bad kind."),
        Plugin("Bad Name", "agent", GoodConfig, "m:f", "Bad name."),
        Plugin("ppo", "agent", GoodConfig, "m:f", "Takes a built-in's name."),
        Plugin("nofactory", "agent", GoodConfig, "just_a_module", "No callable."),
    )
    registry = fresh_registry(bad)
    assert set(registry.plugins) == BUILTINS
    problems = " | ".join(registry.problems)
    for reason in ("'seed' is reserved for the runner", "'width' has no doc", "kind 'robot'", "must match",
                   "'ppo' is already registered by lab", "factory must be 'module:callable'"):
        assert reason in problems


def test_plugins_cli_lists_every_plugin(lab):
    result = lab("plugins", "--json")
    assert result.code == 0
    rows = json.loads(result.out)
    assert {row["name"] for row in rows} >= BUILTINS
    assert all(set(row) == {"name", "kind", "package", "version", "description", "status", "error"} for row in rows)
    assert all(row["status"] == "ok" and row["error"] is None for row in rows)
    table = lab("plugins")
    assert table.code == 0 and "dqn" in table.out and "agent" in table.out


def test_listing_imports_no_heavy_library():
    heavy = ("torch", "stable_baselines3", "mlflow", "diffusers", "sklearn")
    code = ("import sys; from lab import cli; cli.main(['plugins']); cli.main(['data']); "
            "cli.main(['show', 'plugin=dqn', 'env=CartPole']); "
            f"print([m for m in {heavy!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_plugins_envs_and_datasets_carry_one_kind_of_provenance():
    """The registry alone (no plugin manager): every registration is a spec with a Provenance; a module's
    registrations are found, and taken back, by the module that made them."""
    from lab.api import DatasetSpec
    from lab.core.registry import PluginInfo, Provenance, Registered, Registry

    mine, theirs = Provenance("lab-mine", "1.0", "lab_mine"), Provenance("lab-theirs", "2.0", "lab_theirs")
    registry = Registry()
    registry.add_plugin(Plugin("mine", "agent", GoodConfig, "lab_mine:build", "Mine."), mine)
    registry.add_env(EnvSpec("Mine-v0", aliases=("Mine",)), mine)
    registry.add_dataset(DatasetSpec("mine", "regression", (3,), 10, "lab_mine:load"), mine)
    registry.add_env(EnvSpec("Theirs-v0", aliases=("Theirs",)), theirs)
    records = [registry.plugins["mine"], registry.envs["Mine-v0"], registry.datasets["mine"]]
    assert all(isinstance(record, Registered) and record.provenance == mine for record in records)
    assert isinstance(records[0], PluginInfo) and (records[1].package, records[2].version) == ("lab-mine", "1.0")
    assert registry.registered_by("lab_mine") == (["mine"], ["Mine-v0"], ["mine"])
    assert registry.env_spec("Mine-v0") == EnvSpec("Mine-v0", aliases=("Mine",)) and registry.env_spec("No-v0") is None

    registry.forget("lab_mine")
    assert (registry.plugins, registry.datasets) == ({}, {})
    assert list(registry.envs) == ["Theirs-v0"] and registry.env_aliases == {"theirs": "Theirs-v0"}


def test_a_refused_registration_names_the_package_that_registered_first():
    from lab.core.registry import Provenance, Registry

    registry = Registry()
    registry.add_env(EnvSpec("Mine-v0"), Provenance("lab-mine", "1.0", "lab_mine"))
    with pytest.raises(ValueError, match=r"^env 'Mine-v0' is already registered by lab-mine; ignored$"):
        registry.add_env(EnvSpec("Mine-v0"), Provenance("lab-other", "1.0", "lab_other"))
