"""The registry: what the plugins registered (model plugins, envs, datasets), where each came from, and the lookups
the rest of lab asks of it.

Every registration is a :class:`Registered` spec with one :class:`Provenance` (distribution, version, plugin
module), whatever its kind, so a model plugin, an env and a dataset say where they came from the same way.
Registering validates the spec (a ValueError says why it is refused); finding and importing the plugin modules
that register, and rolling a broken one back, is :mod:`lab.core.loading`.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from lab.core.errors import ConfigError, LabError
from lab.core.options import RUNNER_KEYS
from lab.core.specs import KINDS, BuildContext, Dataset, DatasetSpec, EnvSpec, Model, Plugin
from lab.core.text import closest, import_object

if TYPE_CHECKING:
    from pluggy import HookRelay

DATASET_TASKS = ("classification", "regression", "text")
_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_SETUPS_DONE: set[str] = set()  # EnvSpec.setup callables already run in this process


class PluginError(LabError):
    """A plugin could not be loaded and LAB_STRICT_PLUGINS is set, or --plugins-dir is wrong, or a plugin's
    factory cannot be imported."""


def describe_error(error: BaseException) -> str:
    """An exception on one line, with its type: how a plugin's failure is reported."""
    return f"{type(error).__name__}: {error}".replace("\n", " ")


# ---------------------------------------------------------------------------------------------- provenance


@dataclass(frozen=True)
class Provenance:
    """Where a registration came from: the distribution and its version (``lablearn`` for the built-ins,
    ``file:PATH`` and ``local`` for a ``--plugins-dir`` file), and the plugin module that registered it (an entry
    point's name, a built-in package, a file's stem)."""

    package: str
    version: str
    module: str


class _FromPackage:
    """``package`` and ``version`` of a record that holds a :class:`Provenance`: what listings print."""

    provenance: Provenance

    @property
    def package(self) -> str:
        return self.provenance.package

    @property
    def version(self) -> str:
        return self.provenance.version


SpecT = TypeVar("SpecT", Plugin, EnvSpec, DatasetSpec)


@dataclass(frozen=True)
class Registered(_FromPackage, Generic[SpecT]):
    """A registered spec (a model plugin, an env or a dataset) and where it came from."""

    spec: SpecT
    provenance: Provenance


@dataclass(frozen=True)
class PluginInfo(Registered[Plugin]):
    """A registered model plugin: its spec, where it came from, and its factory (imported only when built)."""

    @property
    def name(self) -> str:
        return self.spec.name

    def build(self, context: BuildContext) -> Model:
        """Import the plugin's factory (the first heavy import of a run) and build its model."""
        return self.load_factory()(context)

    def factory_problem(self) -> str | None:
        """Why the factory's module cannot be found, without importing it (``lab plugins`` stays fast); None
        when it can. An error inside the module or a wrong callable name shows only on import: see
        :meth:`load_factory`."""
        import importlib.util

        module_name = self.spec.factory.partition(":")[0]
        try:
            found = importlib.util.find_spec(module_name) is not None
        except (ImportError, ValueError) as e:  # a parent package is missing or fails to import
            return f"factory {self.spec.factory!r} cannot be found: {describe_error(e)}"
        return None if found else f"factory {self.spec.factory!r}: no module named {module_name!r}"

    def load_factory(self) -> Callable[[BuildContext], Model]:
        """Import the factory; a missing module, an error inside it or a wrong name is a one-line PluginError (the
        module is imported apart from the name looked up in it, so that each gets its own message)."""
        module_name, _, attr = self.spec.factory.partition(":")
        problem = self.factory_problem()
        if problem is None:
            try:
                factory = getattr(importlib.import_module(module_name), attr, None)
            except Exception as e:  # the plugin's own module is broken: name it, never a traceback
                problem = f"factory {self.spec.factory!r} failed to import: {describe_error(e)}"
            else:
                if not callable(factory):
                    problem = f"factory {self.spec.factory!r}: module {module_name!r} has no callable {attr!r}"
        if problem is not None:
            raise PluginError(f"plugin {self.name!r} ({self.package} {self.version}) is broken: {problem}")
        return factory


@dataclass(frozen=True)
class BrokenPlugin(_FromPackage):
    """A plugin module that was taken back (it failed to import, to register, or declared another API)."""

    provenance: Provenance
    error: str

    @property
    def name(self) -> str:
        return self.provenance.module

    def __str__(self) -> str:
        return f"plugin {self.name!r} ({self.package} {self.version}) {self.error}"


@dataclass(frozen=True)
class ModuleInfo(_FromPackage):
    """One loaded plugin module (a built-in package or an installed entry point) and what it contributed."""

    provenance: Provenance
    plugins: list[str]
    envs: list[str]
    datasets: list[str]
    hooks: list[str]

    @property
    def name(self) -> str:
        return self.provenance.module

    @property
    def kind(self) -> str:
        return "envs" if self.envs else "datasets" if self.datasets else "callback" if self.hooks else "empty"

    def summary(self) -> str:
        parts = [f"{len(items)} {label}" + (f" ({', '.join(items[:3])}{', ...' if len(items) > 3 else ''})")
                 for label, items in (("envs", self.envs), ("datasets", self.datasets)) if items]
        if self.hooks:
            parts.append("lifecycle hooks " + ", ".join(self.hooks))
        return "; ".join(parts) or "registers nothing"


# ---------------------------------------------------------------------------------------------- the registry


@dataclass
class Registry:
    """Everything the plugins registered, plus the problems met while registering."""

    plugins: dict[str, PluginInfo] = dataclasses.field(default_factory=dict)
    envs: dict[str, Registered[EnvSpec]] = dataclasses.field(default_factory=dict)
    env_aliases: dict[str, str] = dataclasses.field(default_factory=dict)  # lowercase alias -> id
    datasets: dict[str, Registered[DatasetSpec]] = dataclasses.field(default_factory=dict)
    broken: dict[str, BrokenPlugin] = dataclasses.field(default_factory=dict)  # plugin module name -> why
    modules: dict[str, ModuleInfo] = dataclasses.field(default_factory=dict)  # plugin module name -> what it added
    hooks: HookRelay | None = None  # pluggy's hook relay: the lifecycle hooks the runner calls

    @property
    def problems(self) -> list[str]:
        """One line per broken plugin, for warnings."""
        return [str(broken) for broken in self.broken.values()]

    # ------------------------------------------------------------------------------------------ lookups

    def plugin_names(self) -> list[str]:
        return sorted(self.plugins)

    def plugin(self, name: str) -> PluginInfo:
        if name not in self.plugins:
            raise ConfigError(f"unknown plugin {name!r}{closest(name, self.plugins)}; "
                              f"valid plugins: {', '.join(self.plugin_names())}")
        return self.plugins[name]

    def plugins_for(self, kind: str, target: str) -> list[str]:
        """Names of the plugins of ``kind`` known to train on ``target`` (an env id or dataset): their
        ``check_target`` accepts it. A plugin without ``check_target`` cannot tell, so it is not listed."""
        return [
            info.name for info in self.plugins.values()
            if info.spec.kind == kind and info.spec.check_target is not None and info.spec.check_target(target) is None
        ]

    def resolve_dataset(self, name: str) -> str:
        if name in self.datasets:
            return name
        raise ConfigError(f"unknown dataset {name!r}{closest(name, self.datasets)}; "
                          f"valid: {', '.join(sorted(self.datasets)) or 'none installed'} (see `lab data`)")

    def dataset_spec(self, name: str) -> DatasetSpec:
        return self.datasets[self.resolve_dataset(name)].spec

    def load_dataset(self, name: str) -> Dataset:
        return load_dataset(self.dataset_spec(name))

    def env_spec(self, env_id: str) -> EnvSpec | None:
        """The registered spec of an env id (None for a gymnasium env lab has no spec for)."""
        registered = self.envs.get(env_id)
        return registered.spec if registered else None

    def resolve_env(self, name: str) -> str:
        """An alias, a registered id or any gymnasium id -> the id, made ready for ``gymnasium.make``."""
        env_id = self.env_aliases.get(name.lower(), name)
        if env_id in self.envs:
            self.prepare_env(env_id)
            return env_id
        import gymnasium  # the full gymnasium catalog is valid too

        if env_id not in gymnasium.registry:
            for registered in self.envs:  # e.g. ALE/Breakout-v5 exists once ale-py has registered its games
                self.prepare_env(registered)
        if env_id in gymnasium.registry:
            return env_id
        aliases = sorted(alias for registered in self.envs.values() for alias in registered.spec.aliases)
        suggestion = closest(name, [*aliases, *self.envs, *gymnasium.registry])
        raise ConfigError(f"unknown env {name!r}{suggestion}; valid: {', '.join(aliases)}, their full ids, "
                          f"or any gymnasium id (see `lab envs`)")

    def prepare_env(self, env_id: str) -> None:
        """Run the env's ``setup`` (its gymnasium registration), once per process."""
        spec = self.env_spec(env_id)
        if spec is None or spec.setup is None or spec.setup in _SETUPS_DONE:
            return
        if ":" in spec.setup:  # "module:function": call it; a bare module registers its envs on import
            import_object(spec.setup)()
        else:
            importlib.import_module(spec.setup)
        _SETUPS_DONE.add(spec.setup)

    def registered_by(self, module: str) -> tuple[list[str], list[str], list[str]]:
        """The names of the model plugins, envs and datasets that plugin module ``module`` registered."""
        def names(table: Mapping[str, Registered[Any]]) -> list[str]:
            return sorted(name for name, registered in table.items() if registered.provenance.module == module)

        return names(self.plugins), names(self.envs), names(self.datasets)

    # ------------------------------------------------------------------------------------------ registering

    def add_plugin(self, spec: object, provenance: Provenance) -> None:
        """Register a model plugin; a ValueError says why it is refused."""
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
        if name in self.plugins:
            raise ValueError(f"plugin {name!r} is already registered by {self.plugins[name].package}; ignored")
        self.plugins[name] = PluginInfo(spec, provenance)

    def add_env(self, spec: object, provenance: Provenance) -> None:
        """Register an env; a ValueError says why it is refused."""
        if not isinstance(spec, EnvSpec):
            raise ValueError(f"register() takes lab.api.EnvSpec, got {type(spec).__name__}")
        if spec.id in self.envs:
            raise ValueError(f"env {spec.id!r} is already registered by {self.envs[spec.id].package}; ignored")
        if spec.setup is not None and not re.match(r"^[\w.]+(:\w+)?$", spec.setup):
            raise ValueError(f"env {spec.id!r}: setup must be 'module' or 'module:callable', got {spec.setup!r}")
        for alias in spec.aliases:
            owner = self.env_aliases.get(alias.lower())
            if owner and owner != spec.id:
                raise ValueError(f"env alias {alias!r} already names {owner}; ignored for {spec.id}")
        self.envs[spec.id] = Registered(spec, provenance)
        self.env_aliases.update({alias.lower(): spec.id for alias in spec.aliases})

    def add_dataset(self, spec: object, provenance: Provenance) -> None:
        """Register a dataset; a ValueError says why it is refused."""
        if not isinstance(spec, DatasetSpec):
            raise ValueError(f"register() takes lab.api.DatasetSpec, got {type(spec).__name__}")
        if not _NAME.match(spec.name):
            raise ValueError(f"dataset name {spec.name!r} must match {_NAME.pattern}")
        if spec.task not in DATASET_TASKS:
            raise ValueError(f"dataset {spec.name!r}: task {spec.task!r} is not one of {', '.join(DATASET_TASKS)}")
        if ":" not in spec.loader:
            raise ValueError(f"dataset {spec.name!r}: loader must be 'module:callable', got {spec.loader!r}")
        if spec.name in self.datasets:
            raise ValueError(f"dataset {spec.name!r} is already registered by {self.datasets[spec.name].package}; "
                             "ignored")
        self.datasets[spec.name] = Registered(spec, provenance)

    def forget(self, module: str) -> None:
        """Take back everything plugin module ``module`` registered (it is broken: all or nothing per plugin)."""
        plugins, envs, datasets = self.registered_by(module)
        for table, names in ((self.plugins, plugins), (self.envs, envs), (self.datasets, datasets)):
            for name in names:
                del table[name]
        self.env_aliases = {alias: env_id for alias, env_id in self.env_aliases.items() if env_id not in envs}


def load_dataset(spec: DatasetSpec) -> Dataset:
    """Import a dataset's loader and load it (numpy, scikit-learn and the like are imported here)."""
    return import_object(spec.loader)()
