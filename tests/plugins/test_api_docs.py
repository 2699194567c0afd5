"""Meta-tests: every hookspec is documented in PLUGINS.md and exercised by at least one test."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from lab.core import hookspecs

ROOT = Path(__file__).parents[2]
HOOKS = sorted(name for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
               if hasattr(function, "lab_spec"))


def test_the_hooks_are_the_ones_we_know():
    assert sorted(["register_plugins", "register_envs", "register_datasets", "on_run_start", "on_metrics",
                            "on_checkpoint", "on_run_end"]) == HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_in_the_plugin_guide(hook):
    guide = (ROOT / "PLUGINS.md").read_text()
    assert f"### `{hook}`" in guide, f"PLUGINS.md has no section for {hook}"
    signature = str(inspect.signature(getattr(hookspecs, hook)))
    parameters = [name for name in inspect.signature(getattr(hookspecs, hook)).parameters]
    section = guide.split(f"### `{hook}`", 1)[1].split("###", 1)[0]
    assert all(name in section for name in parameters), f"{hook}{signature}: every argument is described"
    assert getattr(hookspecs, hook).__doc__, f"{hook} has a docstring"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_exercised_by_a_test(hook):
    users = [path for path in (ROOT / "tests").rglob("*.py")
             if path.name != Path(__file__).name and f"def {hook}(" in path.read_text()]
    assert users, f"no test implements {hook}"


def test_every_public_api_name_is_exported():
    from lab import api

    for name in api.__all__:
        assert hasattr(api, name), name
    assert {"RunInfo", "Recorder", "EnvSpec", "Plugin", "hookimpl", "option"} <= set(api.__all__)
