"""``lab play`` and ``lab envs``: watch a logged agent or a random policy play, and list every env lab knows.

A logged agent plays through its model's ``play`` method; a random policy is played here. Both feed the same
:class:`lab.video.Recorder`, which also makes every agent run's GIF artifact.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import Any

from lab.cache import cache_dir, write_cached
from lab.config import MAX_SEED
from lab.errors import ConfigError
from lab.evaluate import integer_option, output_path, write_atomically
from lab.registry import Registry
from lab.video import VIDEO_SUFFIXES, Episode, Recorder

PLAY_KEYS = ("run", "env", "policy", "episodes", "seed", "out", "device")
POLICIES = ("random",)


@dataclass
class Played:
    """What ``lab play`` did: the episodes, the file written and who played."""

    episodes: list[Episode]
    out: Path
    player: str
    frames: int


def play(registry: Registry, options: Mapping[str, Any]) -> Played:
    """Play ``episodes`` episodes of run ``run``'s best model, or of ``policy=random`` on ``env``; write ``out``."""
    unknown = sorted(set(options) - set(PLAY_KEYS))
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} for lab play; valid keys: {', '.join(PLAY_KEYS)}")
    episodes = integer_option(options, "episodes", 1)
    seed = integer_option(options, "seed", 0, minimum=0, maximum=MAX_SEED)
    out = output_path(options.get("out", "play.gif"), VIDEO_SUFFIXES)
    recorder = Recorder()
    if "run" in options:
        for key in ("env", "policy"):
            if key in options:
                raise ConfigError(f"{key}= does not go with run=: a logged agent plays the env it was trained on")
        player = _play_run(registry, str(options["run"]), options, episodes, seed, recorder)
    elif "env" in options:
        policy = options.get("policy")
        if policy is None:
            raise ConfigError("missing policy=random: with env= lab play shows a random policy "
                              "(give run=<run id> instead to watch a trained agent)")
        if policy not in POLICIES:
            raise ConfigError(f"policy={policy}: valid policies with env= are {', '.join(POLICIES)} "
                              "(or give run=<run id> to watch a trained agent)")
        if "device" in options:
            raise ConfigError("device= applies to run=<run id> only: a random policy has no network")
        env_id = registry.resolve_env(str(options["env"]))
        play_random(env_id, episodes, seed, recorder)
        player = f"random policy on {env_id}"
    else:
        raise ConfigError("missing run=<run id> (a trained agent) or env=NAME policy=random")
    write_atomically(out, recorder.save)
    return Played(recorder.episodes, out, player, len(recorder.frames))


def play_random(env_id: str, episodes: int, seed: int, recorder: Recorder) -> None:
    """Uniformly random actions, seeded: the same seed gives the same recording."""
    import gymnasium

    env = gymnasium.make(env_id, render_mode="rgb_array")
    recorder.configure(env.metadata.get("render_fps", 30), env.spec.max_episode_steps if env.spec else None)
    env.action_space.seed(seed)
    try:
        for episode in range(episodes):
            env.reset(seed=seed if episode == 0 else None)
            recorder.frame(env.render)
            total, length, done = 0.0, 0, False
            while not done:
                _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
                total, length, done = total + float(reward), length + 1, terminated or truncated
                recorder.frame(env.render, last=done)
            recorder.end_episode(total, length)
    finally:
        env.close()


def _play_run(registry: Registry, run_id: str, options: Mapping[str, Any], episodes: int, seed: int,
              recorder: Recorder) -> str:
    from lab.evaluate import logged_model

    overrides = {"device": options["device"]} if "device" in options else {}
    with logged_model(registry, run_id, overrides) as logged:
        spec, what = logged.config.plugin.spec, f"{logged.config.plugin.name} on {logged.config.target}"
        if spec.kind != "agent":
            hint = " (draw samples with `lab sample run=...`)" if spec.kind == "generator" else ""
            raise ConfigError(f"run {run_id} is a {spec.kind} ({what}): lab play shows agents playing{hint}")
        if not callable(getattr(logged.model, "play", None)):
            raise ConfigError(f"plugin {logged.config.plugin.name!r} ({logged.config.plugin.package}) does not "
                              "implement play(episodes, seed, recorder), so its runs cannot be watched")
        logged.model.play(episodes, seed, recorder)
        return f"run {run_id} ({what}, {logged.which} model)"


# ---------------------------------------------------------------------------------------------- lab envs

ENV_CACHE_FILE = "envs.json"
ENV_CACHE_FORMAT = 1  # bumped when the cached facts change shape
FACT_KEYS = ("observation", "action", "action_kind", "reward_threshold", "max_episode_steps", "source", "agents")


def env_rows(registry: Registry) -> list[dict[str, Any]]:
    """One row per registered env: id, aliases, family, package, spaces, threshold, time limit, fitting agents.

    What building an env tells (its spaces, limits, the agents that fit) is cached in ``envs.json`` of the user
    cache folder, under a stamp of everything it depends on (:func:`env_stamp`): a cached env is not built, and
    one that is not cached is built once (before, ``lab envs`` spent 4.4 of 5.8 s loading Atari ROMs 30 times)."""
    cache_file = cache_dir() / ENV_CACHE_FILE
    cached_envs = _read_cache(cache_file)
    agents = agents_stamp(registry)
    changed = False
    rows = []
    # Our own games first, then by family.
    for env_id, spec in sorted(registry.envs.items(), key=lambda item: (item[1].family != "lab", item[1].family,
                                                                         item[0])):
        package, version = registry.env_sources[env_id]
        row: dict[str, Any] = {"id": env_id, "aliases": list(spec.aliases), "family": spec.family,
                               "package": package, "version": version, "description": spec.description}
        stamp = env_stamp(registry, env_id, agents)
        cached = cached_envs.get(env_id)
        if isinstance(cached, dict) and cached.get("stamp") == stamp:
            row.update({key: cached["facts"][key] for key in FACT_KEYS}, error=None)
        else:
            row.update(env_facts(registry, env_id))
            if row["error"] is None:  # a failure (a missing optional dependency) is retried next time
                cached_envs[env_id] = {"stamp": stamp, "facts": {key: row[key] for key in FACT_KEYS}}
                changed = True
        rows.append(row)
    if changed:
        with contextlib.suppress(OSError):  # a read-only home: lab envs still works, uncached
            write_cached(cache_file, json.dumps(cached_envs, indent=1, sort_keys=True).encode())
    return rows


def env_facts(registry: Registry, env_id: str) -> dict[str, Any]:
    """:func:`describe_env` and the agents that fit, from one build of the env; ``error`` says why not."""
    import gymnasium

    try:
        registry.prepare_env(env_id)
        env = gymnasium.make(env_id)
        try:
            with _made_once(env_id, env):
                return {**describe_env(env), "agents": registry.plugins_for("agent", env_id), "error": None}
        finally:
            env.close()
    except Exception as e:  # e.g. an optional dependency of that env is missing: list it, say why
        return {**dict.fromkeys(FACT_KEYS), "agents": [], "error": f"{type(e).__name__}: {e}"}


def describe_env(env: Any) -> dict[str, Any]:
    """Spaces, threshold, time limit and the distribution that implements a built env."""
    spec = env.spec
    return {"observation": space_summary(env.observation_space), "action": space_summary(env.action_space),
            "action_kind": type(env.action_space).__name__,
            "reward_threshold": spec.reward_threshold if spec else None,
            "max_episode_steps": spec.max_episode_steps if spec else None,
            "source": _distribution_of(type(env.unwrapped).__module__)}


@contextlib.contextmanager
def _made_once(env_id: str, env: Any) -> Iterator[None]:
    """While agents check whether they fit ``env_id``, ``gymnasium.make(env_id)`` hands them ``env``, already
    built, instead of a new one: each ``check_target`` (lab_agents', and the one ``lab new agent`` writes)
    builds the env it checks, and an Atari game takes 0.15-0.3 s to load its ROM."""
    import gymnasium

    make = gymnasium.make

    def make_once(env_name: Any, *args: Any, **kwargs: Any) -> Any:
        if env_name == env_id and not args and not kwargs:
            return _borrowed(env)
        return make(env_name, *args, **kwargs)

    gymnasium.make = make_once
    try:
        yield
    finally:
        gymnasium.make = make


def _borrowed(env: Any) -> Any:
    """``env`` behind a wrapper whose ``close`` leaves it open: its owner closes it."""
    import gymnasium

    class Borrowed(gymnasium.Wrapper):
        def close(self) -> None:
            pass

    return Borrowed(env)


def agents_stamp(registry: Registry) -> dict[str, Any]:
    """What the agents that fit an env depend on: the agent plugins (each by package and version) and the newest
    source file of the modules of their checks, which an editable install changes without a new version."""
    agents = sorted((info for info in registry.plugins.values() if info.spec.kind == "agent"),
                    key=lambda info: info.name)
    modules = sorted({_module_of(info.spec.check_target) for info in agents if info.spec.check_target} - {""})
    return {"plugins": [f"{info.name} {info.package} {info.version}" for info in agents],
            "sources": {module: _newest_source(module) for module in modules}}


def env_stamp(registry: Registry, env_id: str, agents: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the cached facts of ``env_id`` depend on: gymnasium's and ale-py's versions, the package that
    registered the env and the newest source file of its setup module, and ``agents`` (:func:`agents_stamp`)."""
    package, version = registry.env_sources[env_id]
    setup = (registry.envs[env_id].setup or "").partition(":")[0]
    return {"format": ENV_CACHE_FORMAT, "gymnasium": _version("gymnasium"), "ale-py": _version("ale-py"),
            "package": f"{package} {version}", "setup": {setup: _newest_source(setup)} if setup else {},
            "agents": dict(agents)}


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):  # none yet, or unreadable: it is rebuilt
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _version(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _module_of(function: Any) -> str:
    """The module a (possibly ``functools.partial``-wrapped) function is defined in."""
    while isinstance(function, partial):
        function = function.func
    return str(getattr(function, "__module__", "") or "")


def _newest_source(module_name: str) -> int | None:
    """Newest modification time (ns) of the ``.py`` files of the top-level package of ``module_name``."""
    import sys
    from importlib.util import find_spec

    top = module_name.split(".")[0]
    module = sys.modules.get(top)
    try:
        spec = module.__spec__ if module is not None else find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    folders = list(spec.submodule_search_locations or [])
    files = [path for folder in folders for path in Path(folder).rglob("*.py")] if folders else (
        [Path(spec.origin)] if spec.origin and spec.origin.endswith(".py") else [])
    return max((path.stat().st_mtime_ns for path in files), default=None)


def space_summary(space: Any) -> str:
    """``Box(-1, 1, (6,), float32)``, or ``Box((24,), float32)`` when the bounds differ per dimension."""
    import numpy as np

    if type(space).__name__ != "Box":
        return str(space)
    low, high = np.unique(space.low), np.unique(space.high)
    bounds = f"{low[0]:g}, {high[0]:g}, " if len(low) == 1 and len(high) == 1 else ""
    return f"Box({bounds}{space.shape}, {space.dtype})"


def _distribution_of(module: str) -> str:
    top = module.split(".")[0]
    return ", ".join(_distributions().get(top, [top]))


@cache
def _distributions() -> Mapping[str, list[str]]:
    from importlib import metadata

    return metadata.packages_distributions()
