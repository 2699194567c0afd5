"""Configuration: typed, documented keys in one flat ``key=value`` namespace.

A run's config is layered, each layer overriding the one before:

    runner and plugin defaults  <  the plugin's preset for the env/dataset  <  config=FILE.yaml  <  CLI keys

Overrides are parsed with Hydra's override grammar (numbers, bools, ``null``, lists like ``[64,64]``,
quoted strings); every value is then checked against the type annotation of its dataclass field.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from lab.core.errors import ConfigError
from lab.core.options import (
    ENV_KWARGS_KEY,
    MAX_INT,
    MAX_SWEEP_VALUES,
    TARGET_KEY,
    THREADS_BY_KIND,
    RunnerConfig,
    _check_threads,
)
from lab.core.text import clip, closest, import_object, show

if TYPE_CHECKING:
    from lab.core.registry import PluginInfo, Registry
    from lab.core.specs import DatasetSpec, EnvSpec

CONFIG_FILE = "config.yaml"
"""The file a resolved config is written to: a run's artifact, in every checkpoint, in the pyfunc model."""

# Where each value of a resolved config came from, in increasing priority.
SOURCES = ("default", "preset", "file", "cli")




# ---------------------------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Sweep:
    """A key given several values (``seed=0,1,2`` or ``seed=range(5)``): one child run per value."""

    values: tuple[Any, ...]
    texts: tuple[str, ...]
    """Each value as written on the command line, to hand to a child ``lab run``."""


def override_key(arg: str) -> str:
    """The key of a ``key=value`` argument, as written."""
    return arg.split("=", 1)[0].strip()


def check_unique_keys(args: Iterable[str]) -> None:
    """Refuse a key given twice: the last would win silently (``plugin=dqn ... plugin=ppo``)."""
    seen: set[str] = set()
    for arg in args:
        key = override_key(arg).lstrip("+~")
        if key in seen:
            raise ConfigError(f"{key}= is given twice; give each key once")
        seen.add(key)


def replace_override(args: Iterable[str], key: str, value: str) -> list[str]:
    """``args`` with ``key=value`` in place of any ``key=`` among them: for the command lines lab builds for the
    processes it starts (each key may be given once)."""
    return [*(arg for arg in args if override_key(arg) != key), f"{key}={value}"]


def parse_overrides(args: Iterable[str], *, sweeps: bool = False) -> dict[str, Any]:
    """Parse ``key=value`` arguments with Hydra's override grammar into typed Python values; with ``sweeps``,
    a comma list or ``range()`` becomes a :class:`Sweep`. Each key may be given once."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    values: dict[str, Any] = {}
    for arg in args:
        key, value = _parse_one(parser, arg, sweeps=sweeps)
        if key in values:
            raise ConfigError(f"{key}= is given twice; give each key once")
        values[key] = value
    return values


def _parse_one(parser: Any, arg: str, *, sweeps: bool) -> tuple[str, Any]:
    from hydra.errors import HydraException

    key = override_key(arg)
    if "=" not in arg or not key:
        raise ConfigError(f"malformed override {clip(arg)!r}: expected key=value, e.g. seed=3 or lr=1e-3")
    try:
        override = parser.parse_override(arg)
    except HydraException as e:
        reason = clip(str(e).splitlines()[0] if str(e) else type(e).__name__)
        raise ConfigError(f"malformed override {clip(arg)!r}: expected key=value ({reason})") from None
    if not override.is_sweep_override():
        return override.key_or_group, override.value()
    if not sweeps or not override.is_discrete_sweep():
        raise ConfigError(f"{clip(arg)!r}: several values are for `lab run` (one child run per value, e.g. "
                          "seed=0,1,2 or seed=range(5)); give one value per key here")
    return override.key_or_group, _sweep(override, arg)


def _sweep(override: Any, arg: str) -> Sweep:
    """The values of a comma list or ``range()``, at most MAX_SWEEP_VALUES of them (``range(0,inf)`` never
    ends)."""
    from hydra.errors import HydraException

    try:
        values = tuple(itertools.islice(override.sweep_iterator(), MAX_SWEEP_VALUES + 1))
        texts = tuple(itertools.islice(override.sweep_string_iterator(), MAX_SWEEP_VALUES + 1))
    except (HydraException, ValueError, ArithmeticError) as e:  # range(1,9,0), range(nan,1)
        raise ConfigError(f"{clip(arg)!r}: cannot list its values ({type(e).__name__}: {clip(str(e))})") from None
    if not values:
        raise ConfigError(f"{clip(arg)!r}: no values (a range() from its start up to, not including, its stop)")
    if len(values) > MAX_SWEEP_VALUES:
        raise ConfigError(f"{clip(arg)!r}: more than {MAX_SWEEP_VALUES} values; valid: up to {MAX_SWEEP_VALUES} "
                          "runs per key")
    return Sweep(values, texts)


def load_config_file(path: str) -> dict[str, Any]:
    """Read a YAML file of flat ``key: value`` pairs (the same keys as on the command line), each key once."""
    name = clip(path, 200)  # as messages show it: on one line
    data = _read_yaml(name, _read_text(path, name))
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ConfigError(f"config file {name} must be a mapping of key: value pairs")
    if "config" in data:
        raise ConfigError(f"config file {name} may not itself contain a 'config' key")
    return data


def _read_text(path: str, name: str) -> str:
    """The file's text: refused when it is missing, a folder or another non-file, unreadable, or not UTF-8."""
    file = Path(path)
    if file.is_dir():
        raise ConfigError(f"config={name} is a folder; give a YAML file of key: value pairs")
    if not file.exists():
        raise ConfigError(f"config file not found: {name}")
    if not file.is_file():  # a device or a pipe (/dev/zero) may never end
        raise ConfigError(f"config={name} is not a regular file; give a YAML file of key: value pairs")
    try:
        return file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {name} is not UTF-8 text (byte {e.object[e.start]:#04x} at offset "
                          f"{e.start}); save it as UTF-8") from None
    except OSError as e:
        raise ConfigError(f"config file {name} cannot be read: {e.strerror or e}") from None


def _read_yaml(name: str, text: str) -> Any:
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader: builds plain data, never objects
    except yaml.YAMLError as e:
        reason = clip(str(e).splitlines()[0] if str(e) else type(e).__name__, 200)
        raise ConfigError(f"config file {name} is not valid YAML: {reason}") from None
    except RecursionError:
        raise ConfigError(f"config file {name} is nested too deeply; give flat key: value pairs") from None
    except Exception as e:  # PyYAML's constructors raise others on odd scalars (`!!timestamp` alone: AttributeError)
        raise ConfigError(f"config file {name} is not valid YAML: {type(e).__name__}: {clip(str(e), 200)}") from None


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in a mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            _check_unique(self, node, deep)
        return super().construct_mapping(node, deep=deep)


def _check_unique(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool) -> None:
    first_line: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults` merges a mapping; explicit keys win
            continue
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        try:
            repeated = key in first_line
        except TypeError:  # an unhashable key: SafeLoader refuses it with its own message
            continue
        if repeated:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {clip(str(key))!r} is given twice (lines {first_line[key]} and {line}); give "
                "each key once", key_node.start_mark)
        first_line[key] = line


# ---------------------------------------------------------------------------------------------- typing


def type_name(annotation: Any) -> str:
    """A short, readable name for a field annotation: ``int``, ``list[int]``, ``str | None``, ``'a'|'b'``."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "|".join(repr(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(annotation))
    if origin is list:
        (item,) = typing.get_args(annotation) or (Any,)
        return f"list[{type_name(item)}]"
    if origin is dict:
        key, item = typing.get_args(annotation) or (str, Any)
        return f"dict[{type_name(key)}, {type_name(item)}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def coerce(value: Any, annotation: Any) -> Any:
    """Return ``value`` as the annotated type, or raise ValueError saying what was expected."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = typing.get_args(annotation)
        if value is None and type(None) in members:
            return None
        for member in members:
            if member is type(None):
                continue
            try:
                return coerce(value, member)
            except ValueError:
                pass
        raise ValueError(f"expected {type_name(annotation)}")
    if origin is Literal:
        choices = typing.get_args(annotation)
        if value in choices and type(value) is type(choices[choices.index(value)]):
            return value
        raise ValueError(f"valid: {', '.join(str(c) for c in choices)}")
    if origin is list:
        (item,) = typing.get_args(annotation) or (Any,)
        if not isinstance(value, list | tuple):
            raise ValueError(f"expected a list like [64,64] ({type_name(annotation)})")
        return [coerce(v, item) for v in value]
    if origin is dict:
        _, item = typing.get_args(annotation) or (str, Any)
        if not isinstance(value, Mapping):
            raise ValueError("expected a mapping like {name:value} (or one entry per key.NAME=value)")
        if not all(isinstance(k, str) and k.isidentifier() for k in value):
            raise ValueError("expected names (identifiers) as keys")
        return {k: coerce(v, item) for k, v in value.items()}
    if annotation is Any:
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ValueError("expected true or false")
    if annotation is int:
        if isinstance(value, bool):
            raise ValueError("expected an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():  # 5e4 is a fine way to write 50000
            return int(value)
        raise ValueError("expected an integer")
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                return float(value)
            except OverflowError:  # an integer of hundreds of digits
                raise ValueError("must be a finite number") from None
        raise ValueError("expected a number")
    if annotation is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)  # e.g. run_name=42
        raise ValueError("expected a string")
    raise ValueError(f"unsupported field type {type_name(annotation)}")


def check_value(key: str, value: Any, field: dataclasses.Field, annotation: Any) -> Any:
    """Coerce and bound-check one value, raising ConfigError that names the key and what is valid."""
    meta = field.metadata
    try:
        typed = coerce(value, annotation)
    except ValueError as e:
        raise ConfigError(f"{key}={show(value)}: {_expected(annotation, meta, str(e))}") from None
    problem = _non_finite(typed)
    if problem is None and isinstance(typed, int | float) and not isinstance(typed, bool):
        if meta.get("min") is not None and typed < meta["min"]:
            problem = f"must be >= {_bound(meta['min'])}"
        elif meta.get("max") is not None and typed > meta["max"]:
            problem = f"must be <= {_bound(meta['max'])}"
    if problem is None and typed is not None and meta.get("check") is not None:
        problem = meta["check"](typed)
    problem = problem or _beyond_64_bits(typed)
    if problem:
        raise ConfigError(f"{key}={show(value)}: {problem}")
    return typed


def _expected(annotation: Any, meta: Mapping[str, Any], problem: str) -> str:
    """What a value of the wrong type should have been. A number says its bounds too (``episodes=abc: expected an
    integer >= 1``), and an optional one reads as a number rather than as ``int | None``."""
    optional = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    members = [m for m in (typing.get_args(annotation) if optional else (annotation,)) if m is not type(None)]
    if members not in ([int], [float]) or not problem.startswith("expected"):
        return problem
    bounds = [f"{word} {_bound(meta[name])}" for name, word in (("min", ">="), ("max", "<="))
              if meta.get(name) is not None]
    what = " ".join(["expected", "an integer" if members == [int] else "a number", " and ".join(bounds)]).strip()
    return f"{what}, or null" if optional else what


def _non_finite(value: Any) -> str | None:
    """NaN and infinity train nothing (lr=nan failed the run with a traceback), in a list too."""
    if isinstance(value, list):
        return next(filter(None, map(_non_finite, value)), None)
    return "must be a finite number" if isinstance(value, float) and not math.isfinite(value) else None


def _beyond_64_bits(value: Any) -> str | None:
    """Integers end up in numpy, torch and sqlite, all 64-bit: larger ones overflow there."""
    if isinstance(value, list):
        return next(filter(None, map(_beyond_64_bits, value)), None)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        return f"must be between {-MAX_INT:,} and {MAX_INT:,} (64-bit)"
    return None


def _bound(bound: float) -> str:
    """A bound as it reads best: 1,000,000,000,000 rather than 1000000000000."""
    return f"{bound:,}" if isinstance(bound, int) and abs(bound) >= 10_000 else str(bound)


# ---------------------------------------------------------------------------------------------- resolving


@dataclass
class ConfigField:
    """One key of a resolved config, with everything `lab show` prints."""

    key: str
    value: Any
    type: str
    doc: str
    source: str
    owner: str  # "runner" or the plugin name


@dataclass
class ResolvedConfig:
    """A validated config: the runner part, the plugin part, and where each value came from."""

    plugin: PluginInfo
    runner: RunnerConfig
    params: Any
    target: str | None
    preset: str | None
    fields: list[ConfigField]
    target_spec: Any = None  # the EnvSpec or DatasetSpec of the target, when one is registered
    build_features: Any = None  # (backbone name, input shape) -> torch module; see BuildContext.build_features
    hooks: Any = None  # the registry's pluggy hook relay: lifecycle hooks of callback plugins

    def as_dict(self) -> dict[str, Any]:
        """Every key with its value: what is saved with the run and logged as params."""
        return {f.key: f.value for f in self.fields}


def _typed_fields(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls)]


REQUIRED = dataclasses.MISSING
"""The default of an ``option`` a command cannot do without (``option(REQUIRED, ...)``: ``run=`` of ``lab eval``)."""

OptionsT = typing.TypeVar("OptionsT")


def command_options(cls: type[OptionsT], given: Mapping[str, Any], command: str, *,
                    extra: Callable[[str], bool] | None = None) -> tuple[OptionsT, dict[str, Any]]:
    """The keys of a command other than ``lab run`` (``lab eval``, ``lab play``, ...), checked by the same code
    as a run's: ``cls`` is a dataclass of documented :func:`option` fields. An unknown key is refused with the
    nearest valid one, unless ``extra(key)`` accepts it (e.g. a key of the run's plugin, checked once the run's
    config is loaded): those are returned apart. A field declared with a ``REQUIRED`` default must be given."""
    fields = _typed_fields(cls)
    known = [field.name for field, _ in fields]
    typed: dict[str, Any] = {}
    others: dict[str, Any] = {}
    for key, value in given.items():
        if key not in known:
            if extra is not None and extra(key):
                others[key] = value
                continue
            raise ConfigError(f"unknown key {key!r} for lab {command}{closest(key, known)}; valid keys: "
                              f"{', '.join(known)}")
    for field, annotation in fields:
        if field.name in given:
            typed[field.name] = check_value(field.name, given[field.name], field, annotation)
        elif field.default is REQUIRED and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing {field.name}=: {field.metadata.get('doc', '')}")
    return cls(**typed), others


def resolve(
    registry: Registry,
    cli: Mapping[str, Any],
    file: Mapping[str, Any] | None = None,
    *,
    training: bool = True,
) -> ResolvedConfig:
    """Merge defaults, preset, file and CLI values for one plugin; validate every key and value.

    ``training=False`` (a logged run's model rebuilt to evaluate, play or sample) leaves out what only training
    needs of this machine: its cores for ``threads=`` and the plugin's ``check_resources`` (a replay buffer)."""
    file = dict(file or {})
    layers: dict[str, Mapping[str, Any]] = {"file": file, "cli": cli}

    plugin_name = cli.get("plugin", file.get("plugin"))
    if not plugin_name:
        raise ConfigError(f"missing plugin=NAME; valid plugins: {', '.join(registry.plugin_names())}")
    plugin = registry.plugin(str(plugin_name))
    target_key = TARGET_KEY[plugin.spec.kind]
    other_key = "data" if target_key == "env" else "env"
    for layer in layers.values():
        if layer.get(other_key) is not None:
            raise ConfigError(f"{other_key}= does not apply to {plugin.spec.kind} plugin {plugin.name!r}; "
                              f"it trains on {target_key}=NAME")
    target_value = cli.get(target_key, file.get(target_key))
    if target_value is None:
        raise ConfigError(f"plugin {plugin.name!r} ({plugin.spec.kind}) needs {target_key}=NAME")
    target, target_spec = _resolve_target(registry, target_key, str(target_value))
    if not _rebuilds_target(layers):
        _check_target(registry, plugin, target)

    preset = plugin.spec.presets(target) if plugin.spec.presets else None
    layers = {"preset": dict(preset.values) if preset else {}, **layers}

    runner_fields = _typed_fields(RunnerConfig)
    plugin_fields = _typed_fields(plugin.spec.config)
    known = {f.name: (f, t, "runner") for f, t in runner_fields}
    known.update({f.name: (f, t, plugin.name) for f, t in plugin_fields})
    mappings = {key for key, (_, annotation, _) in known.items() if typing.get_origin(annotation) is dict}
    layers = {name: fold_entries(layer, mappings) for name, layer in layers.items()}
    for source, layer in layers.items():
        for key in layer:
            if key not in known:
                where = {"preset": " in the preset", "file": " in the config file", "cli": ""}[source]
                raise ConfigError(f"unknown key {key!r}{where}{closest(key, known)}; "
                                  f"valid keys: {', '.join(known)}")

    values: dict[str, Any] = {}
    fields: list[ConfigField] = []
    for key, (field, annotation, owner) in known.items():
        value, source = _default_value(field, plugin.spec.kind, layers), "default"
        for name, layer in layers.items():
            if key in layer:
                # A mapping (env_kwargs) adds to the layers below, entry by entry: the user's env_kwargs.X=1 keeps
                # the preset's other entries.
                merge = key in mappings and isinstance(value, Mapping) and isinstance(layer[key], Mapping)
                value, source = ({**value, **layer[key]} if merge else layer[key]), name
        if key == "plugin":
            value = plugin.name
        elif key == target_key:
            value = target
        typed = check_value(key, value, field, annotation)
        values[key] = typed
        fields.append(ConfigField(key, typed, type_name(annotation), field.metadata.get("doc", ""), source,
                                  owner))

    for key, (field, _, _) in known.items():
        kind = field.metadata.get("plugin_kind")
        if kind and values[key] is not None:
            _check_plugin_reference(registry, key, values[key], kind)
    runner = RunnerConfig(**{f.name: values[f.name] for f, _ in runner_fields})
    try:
        params = plugin.spec.config(**{f.name: values[f.name] for f, _ in plugin_fields})
    except (ValueError, TypeError) as e:
        raise ConfigError(f"invalid config for plugin {plugin.name!r}: {e}") from None
    _check_plugin_config(plugin, params, _spec_to_check(target_key, target, target_spec), target, training)
    if training:
        _check_machine(runner)
    return ResolvedConfig(plugin, runner, params, target, preset.name if preset else None, fields, target_spec,
                          partial(build_features, registry), registry.hooks)


def fold_entries(layer: Mapping[str, Any], mappings: set[str]) -> dict[str, Any]:
    """``env_kwargs.continuous=true`` as an entry of the mapping ``env_kwargs``: a key ``NAME.ENTRY`` of a
    mapping-typed key joins that mapping (given as a whole too, its entries win)."""
    folded: dict[str, Any] = {}
    entries: dict[str, dict[str, Any]] = {}
    for key, value in layer.items():
        head, dot, entry = str(key).partition(".")
        if dot and head in mappings:
            if not entry.isidentifier():
                raise ConfigError(f"{key}=: {head}.NAME needs a name (an identifier) after the dot, e.g. "
                                  f"{head}.continuous=true")
            entries.setdefault(head, {})[entry] = value
        else:
            folded[key] = value
    for head, values in entries.items():
        whole = folded.get(head)
        if whole is not None and not isinstance(whole, Mapping):
            raise ConfigError(f"{head}={show(whole)}: expected a mapping like {{name:value}}, given with "
                              f"{head}.NAME= entries")
        folded[head] = {**(whole or {}), **values}
    return folded


def _resolve_target(registry: Registry, target_key: str, name: str) -> tuple[str, EnvSpec | DatasetSpec | None]:
    """``env=`` (an alias or any gymnasium id) or ``data=`` -> its canonical name and its registered spec (None for
    a gymnasium env lab has no spec for)."""
    if target_key == "env":
        env_id = registry.resolve_env(name)
        return env_id, registry.env_spec(env_id)
    dataset = registry.resolve_dataset(name)
    return dataset, registry.dataset_spec(dataset)


def _spec_to_check(target_key: str, target: str, spec: Any) -> Any:
    """The spec handed to a plugin's checks: for a gymnasium env lab has no spec for, one with its id alone, so
    that the checks can look at the env (its spaces) all the same."""
    if spec is not None or target_key != "env":
        return spec
    from lab.core.specs import EnvSpec

    return EnvSpec(id=target)


def _check_plugin_config(plugin: PluginInfo, params: Any, spec: Any, target: str, training: bool) -> None:
    checks = [plugin.spec.check_config, plugin.spec.check_resources if training else None]
    for check in filter(None, checks):
        problem = check(params, spec)
        if problem:
            raise ConfigError(f"plugin {plugin.name!r} on {target}: {problem}")


def _check_machine(runner: RunnerConfig) -> None:
    """What a training run needs of this machine, beyond what each value allows."""
    problem = _check_threads(runner.threads)
    if problem:
        raise ConfigError(f"threads={runner.threads}: {problem}")


def _rebuilds_target(layers: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether the user builds the env with arguments of their own (``env_kwargs.continuous=true``), which can
    change its spaces: then the plugin's ``check_config`` judges the env as built, not ``check_target`` the env as
    registered."""
    return any(layer.get(ENV_KWARGS_KEY) or any(str(key).startswith(f"{ENV_KWARGS_KEY}.") for key in layer)
               for layer in layers.values())


def _check_target(registry: Registry, plugin: PluginInfo, target: str) -> None:
    """Refuse a plugin/target mismatch (dqn on continuous actions) before any run exists."""
    if plugin.spec.check_target is None:
        return
    try:
        reason = plugin.spec.check_target(target)
    except Exception as e:  # e.g. the env needs a package that is not installed
        raise ConfigError(f"cannot use {target}: {type(e).__name__}: {e}") from None
    if reason:
        fits = registry.plugins_for(plugin.spec.kind, target)
        raise ConfigError(f"plugin {plugin.name!r} cannot train on {target}: {reason}; "
                          f"{plugin.spec.kind}s that fit: {', '.join(fits) or 'none of those installed'}")


def _check_plugin_reference(registry: Registry, key: str, name: Any, kind: str) -> None:
    usable = sorted(n for n, info in registry.plugins.items() if info.spec.kind == kind and info.spec.features)
    if name not in usable:
        raise ConfigError(f"{key}={name}: not an installed {kind} plugin{closest(str(name), usable)}; "
                          f"valid: {', '.join(usable) or 'none installed'}")


def build_features(registry: Registry, name: str, input_shape: tuple[int, ...]) -> Any:
    """The features module of backbone plugin ``name`` with its default config."""
    spec = registry.plugin(name).spec
    return import_object(str(spec.features))(tuple(input_shape), spec.config())


def _default_value(field: dataclasses.Field, kind: str, layers: Mapping[str, Mapping[str, Any]]) -> Any:
    """A key's default. ``threads`` has one per plugin kind, except in data-parallel runs, where the runner gives
    each rank its share of the cores instead."""
    if field.name != "threads":
        return _default(field)
    nproc = [layer["nproc"] for layer in layers.values() if "nproc" in layer]
    return THREADS_BY_KIND.get(kind, 0) if not nproc or nproc[-1] == 1 else 0


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    raise ConfigError(f"config field {field.name!r} has no default")
