"""The plugin registry: a pluggy PluginManager for project ``lab`` and what its plugins registered.

Built-in plugins (``BUILTIN_PLUGINS``) and third-party packages (entry-point group ``lab``) are loaded the
same way and register through the same callbacks. Each hook implementation is called on its own, with a
``register`` callback bound to the package that provides it, so every registration carries its provenance
and one broken plugin is reported instead of taking the others down.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pluggy

from lab import DISTRIBUTION, __version__, hookspecs
from lab.api import API_VERSION, KINDS, DatasetSpec, EnvSpec, Plugin
from lab.config import RUNNER_KEYS, closest
from lab.errors import ConfigError, LabError

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
            return f"factory {self.spec.factory!r} cannot be found: {_describe(e)}"
        return None if found else f"factory {self.spec.factory!r}: no module named {module_name!r}"

    def load_factory(self) -> Callable[[Any], Any]:
        """Import the factory; a missing module, an error inside it or a wrong name is a one-line PluginError."""
        module_name, _, attr = self.spec.factory.partition(":")
        problem = self.factory_problem()
        if problem is None:
            try:
                factory = getattr(importlib.import_module(module_name), attr, None)
            except Exception as e:  # the plugin's own module is broken: name it, never a traceback
                problem = f"factory {self.spec.factory!r} failed to import: {_describe(e)}"
            else:
                if not callable(factory):
                    problem = f"factory {self.spec.factory!r}: module {module_name!r} has no callable {attr!r}"
        if problem is not None:
            raise PluginError(f"plugin {self.name!r} ({self.package} {self.version}) is broken: {problem}")
        return factory


@dataclass
class Registry:
    """Everything the plugins registered, plus the problems met while registering."""

    plugins: dict[str, PluginInfo] = dataclasses.field(default_factory=dict)
    envs: dict[str, EnvSpec] = dataclasses.field(default_factory=dict)
    env_aliases: dict[str, str] = dataclasses.field(default_factory=dict)  # lowercase alias -> id
    env_sources: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)  # id -> package, version
    datasets: dict[str, tuple[DatasetSpec, str, str]] = dataclasses.field(default_factory=dict)  # + package, version
    broken: dict[str, Any] = dataclasses.field(default_factory=dict)  # plugin module name -> BrokenPlugin
    modules: dict[str, Any] = dataclasses.field(default_factory=dict)  # plugin module name -> ModuleInfo
    hooks: Any = None  # pluggy's hook relay: the lifecycle hooks the runner calls

    @property
    def problems(self) -> list[str]:
        """One line per broken plugin, for warnings."""
        return [str(broken) for broken in self.broken.values()]

    def snapshot(self) -> tuple[dict, ...]:
        return (dict(self.plugins), dict(self.envs), dict(self.env_aliases), dict(self.env_sources),
                dict(self.datasets))

    def restore(self, snapshot: tuple[dict, ...]) -> None:
        self.plugins, self.envs, self.env_aliases, self.env_sources, self.datasets = snapshot

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
        """Names of the plugins of ``kind`` known to train on ``target`` (an env id or dataset): their
        ``check_target`` accepts it. A plugin without ``check_target`` cannot tell, so it is not listed."""
        return [
            info.name for info in self.plugins.values()
            if info.spec.kind == kind and info.spec.check_target is not None and info.spec.check_target(target) is None
        ]


class PluginManager(pluggy.PluginManager):
    """pluggy's manager for project ``lab``, remembering which distribution provided each plugin.

    Every plugin is loaded on its own: one that fails to import, declares an incompatible API version or has a
    bad hook signature is unregistered again (pluggy does not roll back a failed registration), recorded in
    ``broken`` and reported; the others keep working. ``LAB_STRICT_PLUGINS=1`` makes that an error instead,
    ``LAB_DISABLE_PLUGINS=a,b`` skips plugin modules by entry-point or distribution name (and model plugins by
    name), ``LAB_TRACE_PLUGINS=1`` traces every hook call on stderr.
    """

    def __init__(self) -> None:
        super().__init__("lab")
        self.add_hookspecs(hookspecs)
        self.sources: dict[str, tuple[str, str]] = {}  # plugin name -> (distribution, version)
        self.broken: dict[str, BrokenPlugin] = {}
        self.disabled = {_normalized(name) for name in os.environ.get("LAB_DISABLE_PLUGINS", "").split(",")
                         if name.strip()}
        self.strict = os.environ.get("LAB_STRICT_PLUGINS", "") not in ("", "0", "false")
        self.tracing = os.environ.get("LAB_TRACE_PLUGINS", "") not in ("", "0", "false")
        if self.tracing:
            self.trace.root.setwriter(lambda message: print(f"lab trace: {message}", end="", file=sys.stderr))
            self.enable_tracing()

    @property
    def problems(self) -> list[str]:
        return [str(broken) for broken in self.broken.values()]

    def register_source(self, plugin: object, name: str, package: str, version: str) -> bool:
        """Register one plugin module; on any problem roll it back and record it as broken. True if registered."""
        if self.is_disabled(name, package):
            return False
        try:
            check_api_version(plugin)
            check_hook_implementations(plugin)
            self.register(plugin, name=name)
            self.check_pending()  # hook implementations whose name matches no hookspec (a typo) fail here
        except Exception as e:
            if self.has_plugin(name):
                self.unregister(name=name)
            self.mark_broken(name, package, version, f"failed to load: {_describe(e)}")
            return False
        self.sources[name] = (package, version)
        return True

    def is_disabled(self, name: str, package: str) -> bool:
        """Whether ``LAB_DISABLE_PLUGINS`` names this plugin module or its distribution (as pip spells names:
        ``lab_shaky`` and ``Lab-Shaky`` are ``lab-shaky``)."""
        return _normalized(name) in self.disabled or _normalized(package) in self.disabled

    def mark_broken(self, name: str, package: str, version: str, error: str) -> None:
        broken = BrokenPlugin(name, package, version, error)
        if self.strict:
            raise PluginError(f"{broken} (LAB_STRICT_PLUGINS is set; unset it to skip broken plugins, or "
                              f"block this one with LAB_DISABLE_PLUGINS={name})")
        self.broken[name] = broken

    def load_entrypoints(self, group: str = "lab") -> None:
        """Load installed packages' plugins (entry-point group ``lab``), each on its own."""
        for entry_point in metadata.entry_points(group=group):
            dist = entry_point.dist
            package, version = (dist.metadata["name"], dist.version) if dist else (entry_point.value, "unknown")
            if self.has_plugin(entry_point.name) or package == DISTRIBUTION:  # the built-ins: registered already
                continue
            if self.is_disabled(entry_point.name, package):  # not even imported
                continue
            try:
                module = entry_point.load()
            except Exception as e:
                self.mark_broken(entry_point.name, package, version, f"failed to import: {_describe(e)}")
                continue
            self.register_source(module, entry_point.name, package, version)

    def load_directory(self, directory: Path) -> None:
        """Load every ``*.py`` file of ``directory`` as a single-file plugin (quick experiments)."""
        if not directory.is_dir():
            raise PluginError(f"plugins directory {directory} does not exist")
        for path in sorted(directory.glob("*.py")):
            name, package = path.stem, f"file:{path}"
            try:
                module = _import_file(path)
            except Exception as e:
                self.mark_broken(name, package, "local", f"failed to import: {_describe(e)}")
                continue
            self.register_source(module, name, package, "local")


@dataclass(frozen=True)
class BrokenPlugin:
    name: str
    package: str
    version: str
    error: str

    def __str__(self) -> str:
        return f"plugin {self.name!r} ({self.package} {self.version}) {self.error}"


class PluginError(LabError):
    """A plugin could not be loaded and LAB_STRICT_PLUGINS is set, or --plugins-dir is wrong."""


def check_api_version(plugin: object) -> None:
    """Refuse a plugin module that declares ``LAB_API_VERSION`` other than this lab's ``lab.api.API_VERSION``."""
    declared = getattr(plugin, "LAB_API_VERSION", None)
    if declared is not None and declared != API_VERSION:
        raise PluginError(f"built for lab plugin API {declared}, but this lab ({__version__}) provides API "
                          f"{API_VERSION}: install a release of the plugin made for API {API_VERSION}")


def _hook_arguments() -> dict[str, list[str]]:
    """Each hook of ``lab.hookspecs`` and the arguments an implementation may take."""
    import inspect

    return {name: list(inspect.signature(function).parameters) for name, function in vars(hookspecs).items()
            if callable(function) and hasattr(function, "lab_spec")}


def check_hook_implementations(plugin: object) -> None:
    """What pluggy reports cryptically or not at all, named plainly: a module with no ``@hookimpl`` (perhaps
    hooks written without the decorator), a misspelt hook name, an argument the hook does not offer."""
    import inspect

    hooks = _hook_arguments()
    implementations = {name: getattr(plugin, name) for name in dir(plugin)
                       if callable(getattr(plugin, name, None)) and hasattr(getattr(plugin, name), "lab_impl")}
    if not implementations:
        undecorated = sorted(name for name in hooks if callable(getattr(plugin, name, None)))
        if undecorated:
            raise PluginError(f"{', '.join(undecorated)} not decorated with @hookimpl (from lab.api import hookimpl)"
                              f", so lab calls nothing here")
        raise PluginError(f"implements no lab hook (decorate functions named after hooks with @hookimpl: "
                          f"{', '.join(hooks)})")
    for name, function in implementations.items():
        hook = (getattr(function, "lab_impl", None) or {}).get("specname") or name
        if hook not in hooks:
            raise PluginError(f"unknown hook {hook!r}{closest(hook, hooks)}; lab's hooks: {', '.join(hooks)}")
        extra = [arg for arg in inspect.signature(function).parameters if arg not in hooks[hook]]
        if extra:
            raise PluginError(f"hook {hook}() takes any of ({', '.join(hooks[hook])}), not {', '.join(extra)}")


def _normalized(name: str) -> str:
    """A distribution or module name as the package index compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".replace("\n", " ")


def _import_file(path: Path) -> Any:
    import importlib.util

    module_name = "lab_local_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def make_plugin_manager(*, builtins: bool = True, entry_points: bool = True,
                        plugins_dir: Path | None = None) -> PluginManager:
    """A fresh plugin manager with the built-in plugins, installed packages and a plugins directory.

    ``plugins_dir`` defaults to ``$LAB_PLUGINS_DIR`` when set."""
    pm = PluginManager()
    if builtins:
        for module_name in BUILTIN_PLUGINS:
            pm.register_source(importlib.import_module(module_name), module_name, DISTRIBUTION, __version__)
    if entry_points:
        pm.load_entrypoints()
    directory = plugins_dir or (Path(os.environ["LAB_PLUGINS_DIR"]) if os.environ.get("LAB_PLUGINS_DIR") else None)
    if directory is not None:
        pm.load_directory(directory)
    return pm


REGISTRATION_HOOKS = ("register_plugins", "register_envs", "register_datasets")
LIFECYCLE_HOOKS = ("on_run_start", "on_metrics", "on_checkpoint", "on_run_end")


@dataclass(frozen=True)
class ModuleInfo:
    """One loaded plugin module (a built-in package or an installed entry point) and what it contributed."""

    name: str
    package: str
    version: str
    plugins: list[str]
    envs: list[str]
    datasets: list[str]
    hooks: list[str]

    @property
    def kind(self) -> str:
        return "envs" if self.envs else "datasets" if self.datasets else "callback" if self.hooks else "empty"

    def summary(self) -> str:
        parts = [f"{len(items)} {label}" + (f" ({', '.join(items[:3])}{', ...' if len(items) > 3 else ''})")
                 for label, items in (("envs", self.envs), ("datasets", self.datasets)) if items]
        if self.hooks:
            parts.append("lifecycle hooks " + ", ".join(self.hooks))
        return "; ".join(parts) or "registers nothing"


def load_registry(pm: PluginManager | None = None) -> Registry:
    """Call every plugin's registration hooks, validate what they register, and record where each came from.

    All or nothing per plugin: if one of its hooks raises or registers something invalid, everything it
    registered is taken back and the plugin is reported as broken, with every reason."""
    pm = pm or make_plugin_manager()
    registry = Registry(broken=dict(pm.broken))
    registry.hooks = pm.hook
    registers = {"register_plugins": _register_plugin, "register_envs": _register_env,
                 "register_datasets": _register_dataset}
    for plugin_name, _ in pm.list_name_plugin():
        package, version = pm.sources.get(plugin_name, (plugin_name, "unknown"))
        snapshot = registry.snapshot()
        errors: list[str] = []
        for hook_name in REGISTRATION_HOOKS:
            for impl in getattr(pm.hook, hook_name).get_hookimpls():
                if impl.plugin_name != plugin_name:
                    continue
                callback = _bound(registers[hook_name], registry, package, version, errors)
                started = time.perf_counter()
                try:
                    impl.function(register=callback)
                except Exception as e:  # a broken plugin is reported, never fatal to the others
                    errors.append(f"failed in {hook_name}: {_describe(e)}")
                if pm.tracing:
                    print(f"lab trace: {plugin_name}.{hook_name}() in {1000 * (time.perf_counter() - started):.1f} ms",
                          file=sys.stderr)
        if errors:
            registry.restore(snapshot)
            pm.mark_broken(plugin_name, package, version, "; ".join(errors))
            registry.broken[plugin_name] = pm.broken[plugin_name]
            continue
        registry.modules[plugin_name] = ModuleInfo(
            plugin_name, package, version,
            plugins=sorted(set(registry.plugins) - set(snapshot[0])),
            envs=sorted(set(registry.envs) - set(snapshot[1])),
            datasets=sorted(set(registry.datasets) - set(snapshot[4])),
            hooks=[hook for hook in LIFECYCLE_HOOKS
                   if any(i.plugin_name == plugin_name for i in getattr(pm.hook, hook).get_hookimpls())])
    for name in [name for name in registry.plugins if _normalized(name) in pm.disabled]:
        del registry.plugins[name]  # LAB_DISABLE_PLUGINS also takes model plugin names (dqn)
    return registry


def _bound(register: Callable[..., None], registry: Registry, package: str, version: str,
           errors: list[str]) -> Callable:
    def callback(item: Any) -> None:
        try:
            register(registry, item, package, version)
        except ValueError as e:
            errors.append(str(e))

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
