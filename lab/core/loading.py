"""Loading the plugins: a pluggy PluginManager for project ``lab``, and the registry their hooks fill.

Built-in plugins (``BUILTIN_PLUGINS``), third-party packages (entry-point group ``lab``) and the ``*.py`` files of
``--plugins-dir`` are loaded the same way and register through the same callbacks. Each hook implementation is
called on its own, with a ``register`` callback bound to the :class:`~lab.core.registry.Provenance` of the module
that provides it, so every registration says where it came from and one broken plugin is reported (and taken
back) instead of taking the others down.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pluggy

from lab import DISTRIBUTION, __version__
from lab.core import hookspecs
from lab.core.registry import BrokenPlugin, ModuleInfo, PluginError, Provenance, Registry, describe_error
from lab.core.specs import API_VERSION
from lab.core.text import closest

BUILTIN_PLUGINS = ("lab_agents", "lab_backbones", "lab_data", "lab_envs", "lab_generators")
"""Import names of the plugins that ship with lab (in ``plugins/``)."""

REGISTRATION_HOOKS = ("register_plugins", "register_envs", "register_datasets")
LIFECYCLE_HOOKS = ("on_run_start", "on_metrics", "on_checkpoint", "on_run_end")


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
        self.sources: dict[str, Provenance] = {}  # plugin module name -> where it came from
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
        source = Provenance(package, version, name)
        if self.is_disabled(source):
            return False
        try:
            check_api_version(plugin)
            check_hook_implementations(plugin)
            self.register(plugin, name=name)
            self.check_pending()  # hook implementations whose name matches no hookspec (a typo) fail here
        except Exception as e:
            if self.has_plugin(name):
                self.unregister(name=name)
            self.mark_broken(source, f"failed to load: {describe_error(e)}")
            return False
        self.sources[name] = source
        return True

    def source(self, name: str) -> Provenance:
        """Where plugin module ``name`` came from (one registered with pluggy's own ``register``: unknown)."""
        return self.sources.get(name) or Provenance(name, "unknown", name)

    def is_disabled(self, source: Provenance) -> bool:
        """Whether ``LAB_DISABLE_PLUGINS`` names this plugin module or its distribution (as pip spells names:
        ``lab_shaky`` and ``Lab-Shaky`` are ``lab-shaky``)."""
        return _normalized(source.module) in self.disabled or _normalized(source.package) in self.disabled

    def mark_broken(self, source: Provenance, error: str) -> BrokenPlugin:
        broken = BrokenPlugin(source, error)
        if self.strict:
            raise PluginError(f"{broken} (LAB_STRICT_PLUGINS is set; unset it to skip broken plugins, or "
                              f"block this one with LAB_DISABLE_PLUGINS={source.module})")
        self.broken[source.module] = broken
        return broken

    def load_entrypoints(self, group: str = "lab") -> None:
        """Load installed packages' plugins (entry-point group ``lab``), each on its own."""
        for entry_point in metadata.entry_points(group=group):
            dist = entry_point.dist
            package, version = (dist.metadata["name"], dist.version) if dist else (entry_point.value, "unknown")
            if self.has_plugin(entry_point.name) or package == DISTRIBUTION:  # the built-ins: registered already
                continue
            source = Provenance(package, version, entry_point.name)
            if self.is_disabled(source):  # not even imported
                continue
            try:
                module = entry_point.load()
            except Exception as e:
                self.mark_broken(source, f"failed to import: {describe_error(e)}")
                continue
            self.register_source(module, entry_point.name, package, version)

    def load_directory(self, directory: Path) -> None:
        """Load every ``*.py`` file of ``directory`` as a single-file plugin (quick experiments)."""
        if not directory.is_dir():
            raise PluginError(f"plugins directory {directory} does not exist")
        for path in sorted(directory.glob("*.py")):
            source = Provenance(f"file:{path}", "local", path.stem)
            try:
                module = _import_file(path)
            except Exception as e:
                self.mark_broken(source, f"failed to import: {describe_error(e)}")
                continue
            self.register_source(module, source.module, source.package, source.version)


def check_api_version(plugin: object) -> None:
    """Refuse a plugin module that declares ``LAB_API_VERSION`` other than this lab's ``lab.api.API_VERSION``."""
    declared = getattr(plugin, "LAB_API_VERSION", None)
    if declared is not None and declared != API_VERSION:
        raise PluginError(f"built for lab plugin API {declared}, but this lab ({__version__}) provides API "
                          f"{API_VERSION}: install a release of the plugin made for API {API_VERSION}")


def _hook_arguments() -> dict[str, list[str]]:
    """Each hook of ``lab.core.hookspecs`` and the arguments an implementation may take."""
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


def _import_file(path: Path) -> ModuleType:
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


# ---------------------------------------------------------------------------------------------- the registry


def load_registry(pm: PluginManager | None = None) -> Registry:
    """Call every plugin's registration hooks, validate what they register, and record where each came from.

    All or nothing per plugin: if one of its hooks raises or registers something invalid, everything it
    registered is taken back and the plugin is reported as broken, with every reason."""
    pm = pm or make_plugin_manager()
    registry = Registry(broken=dict(pm.broken), hooks=pm.hook)
    for module_name, _ in pm.list_name_plugin():
        source = pm.source(module_name)
        errors = _call_registration_hooks(pm, registry, source)
        if errors:
            registry.forget(module_name)
            registry.broken[module_name] = pm.mark_broken(source, "; ".join(errors))
            continue
        plugins, envs, datasets = registry.registered_by(module_name)
        hooks = [hook for hook in LIFECYCLE_HOOKS
                 if any(impl.plugin_name == module_name for impl in getattr(pm.hook, hook).get_hookimpls())]
        registry.modules[module_name] = ModuleInfo(source, plugins, envs, datasets, hooks)
    for name in [name for name in registry.plugins if _normalized(name) in pm.disabled]:
        del registry.plugins[name]  # LAB_DISABLE_PLUGINS also takes model plugin names (dqn)
    return registry


def _call_registration_hooks(pm: PluginManager, registry: Registry, source: Provenance) -> list[str]:
    """Call the registration hooks of one plugin module, each on its own; every reason it failed, if any."""
    adders = {"register_plugins": registry.add_plugin, "register_envs": registry.add_env,
              "register_datasets": registry.add_dataset}
    errors: list[str] = []
    for hook_name in REGISTRATION_HOOKS:
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if impl.plugin_name != source.module:
                continue
            started = time.perf_counter()
            try:
                impl.function(register=_register_callback(adders[hook_name], source, errors))
            except Exception as e:  # a broken plugin is reported, never fatal to the others
                errors.append(f"failed in {hook_name}: {describe_error(e)}")
            if pm.tracing:
                print(f"lab trace: {source.module}.{hook_name}() in {1000 * (time.perf_counter() - started):.1f} ms",
                      file=sys.stderr)
    return errors


def _register_callback(add: Callable[[object, Provenance], None], source: Provenance,
                       errors: list[str]) -> Callable[[object], None]:
    """The ``register`` a hook is handed: each refused registration is one reason the plugin is broken."""
    def register(item: object) -> None:
        try:
            add(item, source)
        except ValueError as e:
            errors.append(str(e))

    return register
