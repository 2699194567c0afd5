"""The RL Baselines3 Zoo's partially observable tasks (``CartPoleNoVel-v1``, ...): a classic-control or Box2D task
whose velocities are hidden from the agent, by the Zoo's own ``MaskVelocityWrapper`` (``rl_zoo3/wrappers.py``),
registered as the Zoo registers them (``rl_zoo3/import_envs.py``). The recurrent agent's presets train on them."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # gymnasium is imported when an env is set up, not when lab lists envs
    import gymnasium

# The tasks the Zoo's MaskVelocityWrapper knows the velocity indices of (its velocity_indices).
MASKED_TASKS = ("CartPole-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1", "LunarLander-v3",
                "LunarLanderContinuous-v3")


def masked_id(env_id: str) -> str:
    name, version = env_id.split("-v")
    return f"{name}NoVel-v{version}"


# Where rl_zoo3's import (rl_zoo3/gym_patches.py) puts its PatchedTimeLimit in place of gymnasium's TimeLimit
TIME_LIMIT_HOMES = ("gymnasium.wrappers", "gymnasium.wrappers.common", "gymnasium.wrappers.time_limit",
                    "gymnasium.envs.registration")


def import_zoo_module(name: str) -> ModuleType:
    """A module of rl_zoo3 (its wrappers), without the global patch its package's import makes to gymnasium's
    TimeLimit: every env lab makes afterwards would get the Zoo's TimeLimit, and a checkpoint written by a process
    without it would no longer match (lab_agents' env snapshots)."""
    import importlib
    import sys

    originals = {home: sys.modules[home].TimeLimit for home in TIME_LIMIT_HOMES
                 if home in sys.modules and hasattr(sys.modules[home], "TimeLimit")}
    try:
        return importlib.import_module(name)
    finally:
        for home, original in originals.items():
            sys.modules[home].TimeLimit = original


def make(env_id: str, render_mode: str | None = None, **kwargs: object) -> gymnasium.Env:
    # rl_zoo3 is imported here, when such an env is made
    import gymnasium

    wrappers = import_zoo_module("rl_zoo3.wrappers")
    return wrappers.MaskVelocityWrapper(gymnasium.make(env_id, render_mode=render_mode, **kwargs))


def register() -> None:
    """The EnvSpec setup of each masked task: registers all of them with gymnasium, once."""
    import gymnasium

    for env_id in MASKED_TASKS:
        if masked_id(env_id) not in gymnasium.registry:
            spec = gymnasium.spec(env_id)
            gymnasium.register(masked_id(env_id), entry_point=make, kwargs={"env_id": env_id},
                               max_episode_steps=None, reward_threshold=spec.reward_threshold)
