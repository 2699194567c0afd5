"""``lab play`` and ``lab envs``: watch a logged agent or a random policy play, and list every env lab knows.

A logged agent plays through its model's ``play`` method; a random policy is played here. Both feed the same
:class:`lab.video.Recorder`, which also makes every agent run's GIF artifact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

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
    seed = integer_option(options, "seed", 0, minimum=0)
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


def env_rows(registry: Registry) -> list[dict[str, Any]]:
    """One row per registered env: id, aliases, family, package, spaces, threshold, time limit, fitting agents."""
    rows = []
    # Our own games first, then by family.
    for env_id, spec in sorted(registry.envs.items(), key=lambda item: (item[1].family != "lab", item[1].family,
                                                                         item[0])):
        package, version = registry.env_sources[env_id]
        row: dict[str, Any] = {"id": env_id, "aliases": list(spec.aliases), "family": spec.family,
                               "package": package, "version": version, "description": spec.description}
        try:
            registry.prepare_env(env_id)
            row.update(describe_env(env_id))
            row["agents"] = registry.plugins_for("agent", env_id)
            row["error"] = None
        except Exception as e:  # e.g. an optional dependency of that env is missing: list it, say why
            row.update(observation=None, action=None, action_kind=None, reward_threshold=None,
                       max_episode_steps=None, source=None, agents=[], error=f"{type(e).__name__}: {e}")
        rows.append(row)
    return rows


def describe_env(env_id: str) -> dict[str, Any]:
    """Spaces, threshold, time limit and the distribution that implements the env (builds it once)."""
    import gymnasium

    env = gymnasium.make(env_id)
    try:
        spec = env.spec
        return {"observation": space_summary(env.observation_space), "action": space_summary(env.action_space),
                "action_kind": type(env.action_space).__name__,
                "reward_threshold": spec.reward_threshold if spec else None,
                "max_episode_steps": spec.max_episode_steps if spec else None,
                "source": _distribution_of(type(env.unwrapped).__module__)}
    finally:
        env.close()


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
