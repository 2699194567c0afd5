"""A broken plugin never takes lab down: each failure mode is rolled back, reported once, listed as broken, and
fatal only under LAB_STRICT_PLUGINS=1. Plugins load from a --plugins-dir exactly as from an installed package."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

HEADER = "from lab.api import Plugin, EnvSpec, hookimpl, option\nfrom dataclasses import dataclass\n"
BROKEN = {
    "import_error": "import not_a_module_anyone_has\n",
    "raises_in_hook": """
        @hookimpl
        def register_envs(register):
            register(EnvSpec(id="CartPole-v1", aliases=("Half",)))  # half-registered before the crash
            raise RuntimeError("boom in the hook")
        """,
    "bad_signature": """
        @hookimpl
        def register_plugins(register, surprise):
            pass
        """,
    "typo_hook": """
        @hookimpl
        def register_plugin(register):
            pass
        """,
    "duplicate_name": """
        @dataclass
        class C:
            width: int = option(1, "A width.")

        @hookimpl
        def register_plugins(register):
            register(Plugin("dqn", "agent", C, "x:y", "Takes dqn's name."))
        """,
    "future_api": """
        LAB_API_VERSION = 99

        @hookimpl
        def register_plugins(register):
            pass
        """,
}
REASONS = {
    "import_error": "failed to import: ModuleNotFoundError",
    "raises_in_hook": "failed in register_envs: RuntimeError: boom in the hook",
    "bad_signature": "surprise",
    "typo_hook": "register_plugin",
    "duplicate_name": "plugin 'dqn' is already registered by lab",
    "future_api": "built for lab plugin API 99, but this lab (0.1.0) provides API 1",
}
TINY_DQN = ["plugin=dqn", "env=CartPole", "steps=200", "learning_starts=50", "eval_every=200", "eval_episodes=1",
            "progress=false", "gif=false"]


def plugin_dir(tmp_path: Path, name: str) -> Path:
    directory = tmp_path / f"plugins-{name}"
    directory.mkdir()
    (directory / f"{name}.py").write_text(HEADER + textwrap.dedent(BROKEN[name]))
    return directory


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_plugin_is_listed_and_everything_else_works(lab, runs, tmp_path, name):
    directory = plugin_dir(tmp_path, name)
    listed = lab("--plugins-dir", str(directory), "plugins", "--json")
    assert listed.code == 0, listed.err
    rows = {row["name"]: row for row in json.loads(listed.out)}
    assert rows[name]["status"] == "broken" and REASONS[name] in rows[name]["error"]
    assert rows["dqn"]["status"] == "ok" and rows["dqn"]["package"] == "lablearn"
    assert listed.err.count(f"plugin {name!r}") == 1, "reported once, as a warning"
    assert "lab: warning:" in listed.err

    trained = lab("--plugins-dir", str(directory), "run", *TINY_DQN)
    assert trained.code == 0, trained.err
    assert runs()[0].info.status == "FINISHED"
    if name == "raises_in_hook":  # its half-registration was taken back
        assert "Half" not in lab("--plugins-dir", str(directory), "envs", "--json").out


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_strict_mode_fails_naming_the_plugin(lab, runs, tmp_path, monkeypatch, name):
    monkeypatch.setenv("LAB_STRICT_PLUGINS", "1")
    directory = plugin_dir(tmp_path, name)
    for command in (["plugins"], ["run", *TINY_DQN]):
        result = lab("--plugins-dir", str(directory), *command)
        assert result.code == 2
        assert f"plugin {name!r}" in result.err and "LAB_STRICT_PLUGINS" in result.err
    assert runs() == []


def test_broken_installed_distribution_is_reported(lab, tmp_path, monkeypatch):
    """The entry-point path: a pip-installed package whose module fails to import."""
    site = tmp_path / "site"
    (site / "lab_shaky-1.0.dist-info").mkdir(parents=True)
    (site / "lab_shaky-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: lab-shaky\nVersion: 1.0\n")
    (site / "lab_shaky-1.0.dist-info" / "entry_points.txt").write_text("[lab]\nshaky = lab_shaky\n")
    (site / "lab_shaky.py").write_text("raise ImportError('needs libfoo')\n")
    monkeypatch.syspath_prepend(str(site))
    result = lab("plugins", "--json")
    assert result.code == 0
    (row,) = [row for row in json.loads(result.out) if row["name"] == "shaky"]
    assert row["package"] == "lab-shaky" and row["version"] == "1.0"
    assert row["status"] == "broken" and "failed to import: ImportError: needs libfoo" in row["error"]

    for disabled in ("shaky", "lab-shaky", "Lab_Shaky"):  # the entry point, or its distribution as pip spells it
        monkeypatch.setenv("LAB_DISABLE_PLUGINS", disabled)
        quiet = lab("plugins", "--json")
        assert "shaky" not in quiet.out and quiet.err == "", f"{disabled}: a disabled plugin is not even imported"


def test_disable_blocks_builtin_modules_and_model_plugins(lab, monkeypatch):
    monkeypatch.setenv("LAB_DISABLE_PLUGINS", "lab_generators, lab_envs,sac")
    names = {row["name"] for row in json.loads(lab("plugins", "--json").out)}
    assert "dqn" in names and not {"vae", "gan", "diffusion", "lab_envs", "sac"} & names
    refused = lab("run", "plugin=sac", "env=Pendulum")
    assert refused.code == 2 and "unknown plugin 'sac'" in refused.err


def test_trace_shows_every_hook_call(lab, monkeypatch):
    monkeypatch.setenv("LAB_TRACE_PLUGINS", "1")
    result = lab("plugins")
    assert result.code == 0
    for line in ("lab_agents.register_plugins()", "lab_envs.register_envs()", "lab_data.register_datasets()"):
        assert f"lab trace: {line}" in result.err


def test_a_plugins_dir_file_is_a_plugin(lab, runs, tmp_path):
    directory = tmp_path / "mine"
    directory.mkdir()
    (directory / "quick.py").write_text(HEADER + textwrap.dedent("""
        @hookimpl
        def register_envs(register):
            register(EnvSpec(id="CartPole-v0", aliases=("Pole",), description="quick alias"))
        """))
    assert lab("run", "plugin=dqn", "env=Pole").code == 2, "unknown without the directory"
    result = lab("--plugins-dir", str(directory), "run", *[a if a != "env=CartPole" else "env=Pole" for a in TINY_DQN])
    assert result.code == 0, result.err
    listed = json.loads(lab("--plugins-dir", str(directory), "plugins", "--json").out)
    assert any(row["name"] == "quick" and row["package"] == f"file:{directory / 'quick.py'}" for row in listed)


def test_missing_plugins_dir_is_refused(lab, tmp_path):
    result = lab("--plugins-dir", str(tmp_path / "nope"), "plugins")
    assert result.code == 2 and "plugins directory" in result.err and "does not exist" in result.err


def test_a_plugins_dir_file_registers_everything_with_its_provenance(tmp_path):
    """A model plugin, an env and a dataset of one file share one Provenance; a broken file's are all taken back."""
    from lab.core.loading import load_registry, make_plugin_manager
    from lab.core.registry import Provenance

    directory = tmp_path / "mine"
    directory.mkdir()
    everything = """
        @dataclass
        class C:
            width: int = option(1, "A width.")

        @hookimpl
        def register_plugins(register):
            register(Plugin("{name}", "agent", C, "x:y", "One of each."))

        @hookimpl
        def register_envs(register):
            register(EnvSpec(id="{name}/Env-v0", aliases=("{name}-env",)))

        @hookimpl
        def register_datasets(register):
            register(DatasetSpec("{name}-data", "regression", (2,), 4, "x:load"))
            {fail}
        """
    for name, fail in (("whole", ""), ("broken", "raise RuntimeError('late')")):
        source = textwrap.dedent(everything).format(name=name, fail=fail)
        (directory / f"{name}.py").write_text(HEADER.replace("EnvSpec,", "EnvSpec, DatasetSpec,") + source)
    registry = load_registry(make_plugin_manager(entry_points=False, plugins_dir=directory))

    source = Provenance(f"file:{directory / 'whole.py'}", "local", "whole")
    records = [registry.plugins["whole"], registry.envs["whole/Env-v0"], registry.datasets["whole-data"]]
    assert [record.provenance for record in records] == [source] * 3
    module = registry.modules["whole"]
    assert (module.provenance, module.plugins, module.envs, module.datasets) == (
        source, ["whole"], ["whole/Env-v0"], ["whole-data"])

    assert "broken" not in registry.plugins and "broken/Env-v0" not in registry.envs
    assert "broken-data" not in registry.datasets and "broken-env" not in registry.env_aliases
    assert registry.broken["broken"].provenance == Provenance(f"file:{directory / 'broken.py'}", "local", "broken")
    assert "failed in register_datasets: RuntimeError: late" in registry.broken["broken"].error
