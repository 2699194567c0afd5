"""``lab play`` and ``lab envs``: watch a logged agent or a random policy play, and list every env lab knows.

A logged agent plays through its model's ``play`` method; a random policy is played here. Both feed the same
:class:`lab.training.video.Recorder`, which also makes every agent run's GIF artifact.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import Any

from lab.commands import common
from lab.commands.common import check_store, model_as_run, print_table
from lab.commands.evaluate import MODEL_DOC, output_path, write_atomically
from lab.core.cache import cache_dir, write_cached
from lab.core.config import command_options, parse_overrides
from lab.core.errors import ConfigError
from lab.core.options import check_seed, option
from lab.core.registry import Registry
from lab.training.video import VIDEO_SUFFIXES, Episode, Recorder

POLICIES = ("random",)


def _check_policy(value: str) -> str | None:
    """``policy=`` names one of :data:`POLICIES`; a trained agent is watched through ``run=`` instead."""
    return None if value in POLICIES else (f"valid policies with env= are {', '.join(POLICIES)} (or give "
                                           "run=<run id> to watch a trained agent)")


@dataclass
class PlayOptions:
    """``lab play``'s keys: ``run=`` (a trained agent) or ``env=`` with ``policy=random``."""

    run: str | None = option(None, f"The agent to watch: {MODEL_DOC}.")
    env: str | None = option(None, "The env a random policy plays instead (see `lab envs`), with policy=random.")
    policy: str | None = option(None, f"The policy that plays env=: {', '.join(POLICIES)}.", check=_check_policy)
    episodes: int = option(1, "Episodes to play, one after the other in the recording.", min=1)
    seed: int = option(0, "Seed of the first episode: the same seed gives the same recording.", min=0,
                       check=check_seed)
    out: str = option("play.gif", f"The recording to write: {' or '.join(VIDEO_SUFFIXES)}.")
    device: str | None = option(None, "Torch device (auto, cpu, cuda, cuda:N, mps) of run=; default the run's.")


@dataclass
class Played:
    """What ``lab play`` did: the episodes, the file written and who played."""

    episodes: list[Episode]
    out: Path
    player: str
    frames: int


def play(registry: Registry, options: PlayOptions) -> Played:
    """Play ``episodes`` episodes of run ``run``'s best model, or of ``policy=random`` on ``env``; write ``out``."""
    out = output_path(options.out, VIDEO_SUFFIXES)
    recorder = Recorder()
    if options.run is not None:
        for key in ("env", "policy"):
            if getattr(options, key) is not None:
                raise ConfigError(f"{key}= does not go with run=: a logged agent plays the env it was trained on")
        player = _play_run(registry, options, recorder)
    elif options.env is not None:
        if options.policy is None:
            raise ConfigError("missing policy=random: with env= lab play shows a random policy "
                              "(give run=<run id> instead to watch a trained agent)")
        if options.device is not None:
            raise ConfigError("device= applies to run=<run id> only: a random policy has no network")
        env_id = registry.resolve_env(options.env)
        play_random(env_id, options.episodes, options.seed, recorder)
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


def _play_run(registry: Registry, options: PlayOptions, recorder: Recorder) -> str:
    from lab.commands.evaluate import logged_model

    run_id = str(options.run)
    overrides = {} if options.device is None else {"device": options.device}
    with logged_model(registry, run_id, overrides) as logged:
        spec, what = logged.config.plugin.spec, f"{logged.config.plugin.name} on {logged.config.target}"
        if spec.kind != "agent":
            hint = " (draw samples with `lab sample run=...`)" if spec.kind == "generator" else ""
            raise ConfigError(f"run {run_id} is a {spec.kind} ({what}): lab play shows agents playing{hint}")
        if not callable(getattr(logged.model, "play", None)):
            raise ConfigError(f"plugin {logged.config.plugin.name!r} ({logged.config.plugin.package}) does not "
                              "implement play(episodes, seed, recorder), so its runs cannot be watched")
        logged.model.play(options.episodes, options.seed, recorder)
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
    for env_id, registered in sorted(registry.envs.items(), key=lambda item: (item[1].spec.family != "lab",
                                                                               item[1].spec.family, item[0])):
        spec = registered.spec
        row: dict[str, Any] = {"id": env_id, "aliases": list(spec.aliases), "family": spec.family,
                               "package": registered.package, "version": registered.version,
                               "description": spec.description}
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
    registered = registry.envs[env_id]
    setup = (registered.spec.setup or "").partition(":")[0]
    return {"format": ENV_CACHE_FORMAT, "gymnasium": _version("gymnasium"), "ale-py": _version("ale-py"),
            "package": f"{registered.package} {registered.version}",
            "setup": {setup: _newest_source(setup)} if setup else {}, "agents": dict(agents)}


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
    """The distribution(s) a module's top-level package comes from. A distribution is named once even when it is
    visible twice (a source checkout's ``*.egg-info`` on ``sys.path`` beside the installed ``*.dist-info``, as with
    ``python -m lab.cli`` run from the checkout)."""
    top = module.split(".")[0]
    return ", ".join(dict.fromkeys(_distributions().get(top, [top])))


@cache
def _distributions() -> Mapping[str, list[str]]:
    from importlib import metadata

    return metadata.packages_distributions()


# ---------------------------------------------------------------------------------------------- the command


def cmd_envs(args: argparse.Namespace) -> int:
    registry = common.registry()
    rows = env_rows(registry)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0

    def threshold(row: dict[str, Any]) -> str:
        return "-" if row["reward_threshold"] is None else f"{row['reward_threshold']:g}"

    print_table([{**row, "aliases": ", ".join(row["aliases"]) or "-", "threshold": threshold(row),
                   "observation": row["observation"] or f"unavailable: {row['error']}",
                   "action": row["action"] or "-", "agents": ", ".join(row["agents"]) or "-"} for row in rows],
                 ("id", "aliases", "family", "source", "observation", "action", "threshold", "agents"))
    print("env= also takes any other gymnasium id, e.g. ALE/Tetris-v5 or Taxi-v4.")
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    options, _ = command_options(PlayOptions, model_as_run(parse_overrides(args.overrides)), "play")
    if options.run is not None:
        check_store(options.run)
    result = play(common.registry(), options)
    for number, episode in enumerate(result.episodes, 1):
        print(f"episode {number}: return {episode.total_reward:.2f}, length {episode.length} steps")
    if len(result.episodes) > 1:
        returns = [episode.total_reward for episode in result.episodes]
        print(f"mean return {sum(returns) / len(returns):.2f} over {len(returns)} episodes")
    print(f"wrote {result.frames} frames of {result.player} to {result.out}")
    return 0
