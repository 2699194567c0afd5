"""The plugin registry: a pluggy PluginManager for project ``lab`` and what its plugins registered.

Built-in plugins (``BUILTIN_PLUGINS``) and third-party packages (entry-point group ``lab``) are loaded the
same way and register through the same callbacks. Each hook implementation is called on its own, with a
``register`` callback bound to the package that provides it, so every registration carries its provenance
and one broken plugin is reported instead of taking the others down.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from lab import __version__, hookspecs
from lab.api import KINDS, DatasetSpec, EnvSpec, Plugin
from lab.config import RUNNER_KEYS, closest
from lab.errors import ConfigError

BUILTIN_PLUGINS = ("lab_agents", "lab_backbones", "lab_data", "lab_envs", "lab_generators")
"""Import names of the plugins that ship with lab (in ``plugins/``)."""

DATASET_TASKS = ("classification", "regression", "text")
_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_SETUPS_DONE: set[str] = set()  # EnvSpec.setup callables already run in this process


@dataclass(frozen=True)
class PluginInfo:
    """A registered plugin and the distribution it came from."""

    spec: Plugin
    package: str
    version: str

    @property
    def name(self) -> str:
        return self.spec.name

    def build(self, context: Any) -> Any:
        """Import the plugin's factory (the first heavy import of a run) and build its model."""
        module_name, _, attr = self.spec.factory.partition(":")
        factory = getattr(importlib.import_module(module_name), attr)
        return factory(context)


@dataclass
class Registry:
    """Everything the plugins registered, plus the problems met while registering."""

    plugins: dict[str, PluginInfo] = dataclasses.field(default_factory=dict)
    envs: dict[str, EnvSpec] = dataclasses.field(default_factory=dict)
    env_aliases: dict[str, str] = dataclasses.field(default_factory=dict)  # lowercase alias -> id
    env_sources: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)  # id -> package, version
    datasets: dict[str, tuple[DatasetSpec, str, str]] = dataclasses.field(default_factory=dict)  # + package, version
    problems: list[str] = dataclasses.field(default_factory=list)

    def plugin_names(self) -> list[str]:
        return sorted(self.plugins)

    def plugin(self, name: str) -> PluginInfo:
        if name not in self.plugins:
            raise ConfigError(f"unknown plugin {name!r}{closest(name, self.plugins)}; "
                              f"valid plugins: {', '.join(self.plugin_names())}")
        return self.plugins[name]

    def resolve_target(self, key: str, name: str) -> str:
        """Resolve ``env=`` (alias or gymnasium id) or ``data=`` to its canonical name."""
        if key == "env":
            return self.resolve_env(name)
        return self.resolve_dataset(name)

    def resolve_dataset(self, name: str) -> str:
        if name in self.datasets:
            return name
        raise ConfigError(f"unknown dataset {name!r}{closest(name, self.datasets)}; "
                          f"valid: {', '.join(sorted(self.datasets)) or 'none installed'} (see `lab data`)")

    def load_dataset(self, name: str) -> Any:
        return load_dataset(self.datasets[self.resolve_dataset(name)][0])

    def target_spec(self, key: str, target: str) -> EnvSpec | DatasetSpec | None:
        """The registered spec of a resolved target (None for a gymnasium env lab has no spec for)."""
        if key == "env":
            return self.envs.get(target)
        return self.datasets[target][0]


    def resolve_env(self, name: str) -> str:
        """An alias, a registered id or any gymnasium id -> the id, made ready for ``gymnasium.make``."""
        env_id = self.env_aliases.get(name.lower(), name)
        if env_id in self.envs:
            self.prepare_env(env_id)
            return env_id
        import gymnasium  # the full gymnasium catalog is valid too

        if env_id not in gymnasium.registry:
            for spec in self.envs.values():  # e.g. ALE/Breakout-v5 exists once ale-py has registered its games
                self.prepare_env(spec.id)
        if env_id in gymnasium.registry:
            return env_id
        aliases = sorted(alias for spec in self.envs.values() for alias in spec.aliases)
        suggestion = closest(name, [*aliases, *self.envs, *gymnasium.registry])
        raise ConfigError(f"unknown env {name!r}{suggestion}; valid: {', '.join(aliases)}, their full ids, "
                          f"or any gymnasium id (see `lab envs`)")

    def prepare_env(self, env_id: str) -> None:
        """Run the env's ``setup`` (its gymnasium registration), once per process."""
        spec = self.envs.get(env_id)
        if spec is None or spec.setup is None or spec.setup in _SETUPS_DONE:
            return
        module_name, _, attr = spec.setup.partition(":")
        module = importlib.import_module(module_name)
        if attr:
            getattr(module, attr)()
        _SETUPS_DONE.add(spec.setup)

    def plugins_for(self, kind: str, target: str) -> list[str]:
        """Names of the plugins of ``kind`` that can train on ``target`` (an env id or dataset)."""
        return [
            info.name for info in self.plugins.values()
            if info.spec.kind == kind and not (info.spec.check_target and info.spec.check_target(target))
        ]


class PluginManager(pluggy.PluginManager):
    """pluggy's manager for project ``lab``, remembering which distribution provided each plugin."""

    def __init__(self) -> None:
        super().__init__("lab")
        self.add_hookspecs(hookspecs)
        self.sources: dict[str, tuple[str, str]] = {}  # plugin name -> (distribution, version)
        self.problems: list[str] = []

    def register_source(self, plugin: object, name: str, package: str, version: str) -> None:
        self.register(plugin, name=name)
        self.sources[name] = (package, version)

    def load_entrypoints(self, group: str = "lab") -> None:
        """Load installed packages' plugins; one that fails to import is reported, not fatal."""
        for entry_point in metadata.entry_points(group=group):
            dist = entry_point.dist
            package, version = (dist.metadata["name"], dist.version) if dist else (entry_point.value, "unknown")
            if self.has_plugin(entry_point.name) or package == "lab":
                continue
            try:
                self.register_source(entry_point.load(), entry_point.name, package, version)
            except Exception as e:
                if self.has_plugin(entry_point.name):  # pluggy does not roll back a failed registration
                    self.unregister(name=entry_point.name)
                self.problems.append(f"plugin {entry_point.name!r} ({package}) failed to load: "
                                     f"{type(e).__name__}: {e}")


def make_plugin_manager(*, builtins: bool = True, entry_points: bool = True) -> PluginManager:
    """A fresh plugin manager with the built-in plugins and, unless disabled, installed packages."""
    pm = PluginManager()
    if builtins:
        for module_name in BUILTIN_PLUGINS:
            pm.register_source(importlib.import_module(module_name), module_name, "lab", __version__)
    if entry_points:
        pm.load_entrypoints()
    return pm


def load_registry(pm: PluginManager | None = None) -> Registry:
    """Call every plugin's hooks, validate what they register, and record where each came from."""
    pm = pm or make_plugin_manager()
    registry = Registry(problems=list(pm.problems))
    hooks = (("register_plugins", _register_plugin), ("register_envs", _register_env),
             ("register_datasets", _register_dataset))
    for hook_name, register in hooks:
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            package, version = pm.sources.get(impl.plugin_name, (impl.plugin_name, "unknown"))
            callback = _bound(register, registry, package, version)
            try:
                impl.function(register=callback)
            except Exception as e:  # a broken plugin is reported, never fatal to the others
                registry.problems.append(f"plugin {impl.plugin_name!r} ({package}) failed in {hook_name}: "
                                         f"{type(e).__name__}: {e}")
    return registry


def _bound(register: Callable[..., None], registry: Registry, package: str, version: str) -> Callable:
    def callback(item: Any) -> None:
        try:
            register(registry, item, package, version)
        except ValueError as e:
            registry.problems.append(f"{package}: {e}")

    return callback


def _register_plugin(registry: Registry, spec: Any, package: str, version: str) -> None:
    if not isinstance(spec, Plugin):
        raise ValueError(f"register() takes lab.api.Plugin, got {type(spec).__name__}")
    name = spec.name
    if not _NAME.match(name):
        raise ValueError(f"plugin name {name!r} must match {_NAME.pattern}")
    if spec.kind not in KINDS:
        raise ValueError(f"plugin {name!r}: kind {spec.kind!r} is not one of {', '.join(KINDS)}")
    if not dataclasses.is_dataclass(spec.config):
        raise ValueError(f"plugin {name!r}: config must be a dataclass")
    for field in dataclasses.fields(spec.config):
        if field.name in RUNNER_KEYS:
            raise ValueError(f"plugin {name!r}: config key {field.name!r} is reserved for the runner")
        if not field.metadata.get("doc"):
            raise ValueError(f"plugin {name!r}: config key {field.name!r} has no doc (use lab.api.option)")
    if ":" not in spec.factory:
        raise ValueError(f"plugin {name!r}: factory must be 'module:callable', got {spec.factory!r}")
    if name in registry.plugins:
        other = registry.plugins[name]
        raise ValueError(f"plugin {name!r} is already registered by {other.package}; ignored")
    registry.plugins[name] = PluginInfo(spec, package, version)


def _register_env(registry: Registry, spec: Any, package: str, version: str) -> None:
    if not isinstance(spec, EnvSpec):
        raise ValueError(f"register() takes lab.api.EnvSpec, got {type(spec).__name__}")
    if spec.id in registry.envs:
        raise ValueError(f"env {spec.id!r} is already registered by {registry.env_sources[spec.id][0]}; ignored")
    if spec.setup is not None and not re.match(r"^[\w.]+(:\w+)?$", spec.setup):
        raise ValueError(f"env {spec.id!r}: setup must be 'module' or 'module:callable', got {spec.setup!r}")
    for alias in spec.aliases:
        owner = registry.env_aliases.get(alias.lower())
        if owner and owner != spec.id:
            raise ValueError(f"env alias {alias!r} already names {owner}; ignored for {spec.id}")
    registry.envs[spec.id] = spec
    registry.env_sources[spec.id] = (package, version)
    registry.env_aliases.update({alias.lower(): spec.id for alias in spec.aliases})


def _register_dataset(registry: Registry, spec: Any, package: str, version: str) -> None:
    if not isinstance(spec, DatasetSpec):
        raise ValueError(f"register() takes lab.api.DatasetSpec, got {type(spec).__name__}")
    if not _NAME.match(spec.name):
        raise ValueError(f"dataset name {spec.name!r} must match {_NAME.pattern}")
    if spec.task not in DATASET_TASKS:
        raise ValueError(f"dataset {spec.name!r}: task {spec.task!r} is not one of {', '.join(DATASET_TASKS)}")
    if ":" not in spec.loader:
        raise ValueError(f"dataset {spec.name!r}: loader must be 'module:callable', got {spec.loader!r}")
    if spec.name in registry.datasets:
        raise ValueError(f"dataset {spec.name!r} is already registered by {registry.datasets[spec.name][1]}; ignored")
    registry.datasets[spec.name] = (spec, package, version)


def load_dataset(spec: DatasetSpec) -> Any:
    """Import a dataset's loader and load it (numpy, scikit-learn and the like are imported here)."""
    module_name, _, attr = spec.loader.partition(":")
    return getattr(importlib.import_module(module_name), attr)()
