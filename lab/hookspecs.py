"""The hooks a lab plugin can implement.

A plugin is any module (or object) with functions decorated by ``lab.api.hookimpl``. Each hook receives a
``register`` callback, as in simonw/llm: the core validates what is registered and records which package
registered it. Hook implementations must stay cheap: no torch, SB3, diffusers or mlflow imports here;
import those inside the factories that build models.
"""

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("lab")


@hookspec
def register_plugins(register: Callable[..., None]) -> None:
    """Register model plugins: call ``register(lab.api.Plugin(...))`` once per plugin."""


@hookspec
def register_envs(register: Callable[..., None]) -> None:
    """Register environments: call ``register(lab.api.EnvSpec(...))`` once per env or alias."""


@hookspec
def register_datasets(register: Callable[..., None]) -> None:
    """Register datasets: call ``register(lab.api.DatasetSpec(...))`` once per dataset."""
