"""What stable-baselines3 can take, checked before a run exists: an env's spaces, the rollout constraints SB3
asserts, and the memory its buffers allocate. Light on purpose (gymnasium and numpy; no SB3, no torch), since
these checks run on every ``lab run``/``lab show`` and on ``lab envs``.

The rules follow SB3 2.x's source: ``common/preprocessing.py`` (the observation and action spaces its policies
and buffers handle), ``common/base_class.py`` (bounded Box actions, gSDE on Box only), ``ppo/ppo.py`` (rollouts
and minibatches of more than one step when advantages are normalised) and ``common/buffers.py`` (what the
replay and rollout buffers allocate).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import gymnasium
import numpy as np

# lab's agents use SB3's MlpPolicy or CnnPolicy, never MultiInputPolicy: Dict (and Tuple, Text, Graph, ...)
# observations are not taken.
OBSERVATION_SPACES = ("Box", "Discrete", "MultiDiscrete", "MultiBinary")
# Atari frames as lab_agents.sb3 preprocesses them (SB3's AtariWrapper, then VecFrameStack of 4): 84x84 grey.
ATARI_OBSERVATION = ((84, 84, 4), np.dtype(np.uint8))
FLOAT32 = 4  # bytes of SB3's reward, done and timeout (replay) or value, return... (rollout) entries


@cache
def spaces_of(env_id: str) -> tuple[gymnasium.Space, gymnasium.Space]:
    """(observation space, action space) of an env; builds it once per process."""
    env = gymnasium.make(env_id)
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


def space_problem(algo: str, action_kinds: tuple[str, ...], env_id: str) -> str | None:
    """Why ``algo`` cannot train on ``env_id`` at all, whatever its config (None if it can)."""
    observation, action = spaces_of(env_id)
    if type(action).__name__ not in action_kinds:
        return f"{algo} needs a {' or '.join(action_kinds)} action space and {env_id} has {action}"
    return action_problem(action, env_id) or observation_problem(observation, env_id)


def observation_problem(space: gymnasium.Space, env_id: str) -> str | None:
    kind = type(space).__name__
    if kind not in OBSERVATION_SPACES:
        return (f"{env_id} has a {kind} observation space ({space}); SB3's agents take "
                f"{', '.join(OBSERVATION_SPACES)} observations")
    if kind == "MultiDiscrete" and np.ndim(space.nvec) > 1:
        return f"{env_id} has a multi-dimensional MultiDiscrete observation space ({space}), which SB3 cannot take"
    return None


def action_problem(space: gymnasium.Space, env_id: str) -> str | None:
    kind = type(space).__name__
    if kind == "Box" and not np.all(np.isfinite([space.low, space.high])):
        return f"{env_id} has unbounded Box actions ({space}); SB3 needs finite low and high bounds"
    if kind == "MultiBinary" and np.ndim(space.n) > 0:
        return f"{env_id} has a multi-dimensional MultiBinary action space ({space}), which SB3 cannot take"
    if kind == "MultiDiscrete" and np.ndim(space.nvec) > 1:
        return f"{env_id} has a multi-dimensional MultiDiscrete action space ({space}), which SB3 cannot take"
    return None


def config_problem(algo: str, action_kinds: tuple[str, ...], config: Any, env_id: str) -> str | None:
    """Why SB3 would refuse (or train on NaN with) this config on ``env_id``, or cannot build its envs: an
    ``env_kwargs`` key the env does not take, a wrapper that does not exist, spaces that env_kwargs or wrappers
    change into ones ``algo`` cannot take (``env_kwargs.continuous=true`` for dqn)."""
    observation, action = spaces_of(env_id)
    if config.env_kwargs or config.env_wrapper is not None:
        from lab_agents import envs

        built = envs.spaces(env_id, config)
        if isinstance(built, str):
            return built
        observation, action = built
        if type(action).__name__ not in action_kinds:
            return (f"{algo} needs a {' or '.join(action_kinds)} action space and {env_id} with "
                    f"env_kwargs={config.env_kwargs} has {action}")
        problem = action_problem(action, env_id) or observation_problem(observation, env_id)
        if problem:
            return problem
    on_policy = hasattr(config, "n_steps")
    rollout = config.n_steps * config.n_envs if on_policy else None
    if on_policy and config.normalize_advantage and rollout == 1:
        return (f"n_steps={config.n_steps} n_envs={config.n_envs}: with normalize_advantage=true a rollout needs "
                "more than one step (n_steps * n_envs > 1), or its advantages are NaN")
    if hasattr(config, "n_epochs") and config.normalize_advantage and config.batch_size < 2:
        return (f"batch_size={config.batch_size}: with normalize_advantage=true PPO needs minibatches of at least 2 "
                "steps, or their advantages are NaN")
    if getattr(config, "use_sde", False) and type(action).__name__ != "Box":
        return f"use_sde=true needs continuous (Box) actions; {env_id} has {action}"
    if getattr(config, "action_noise", "none") != "none" and type(action).__name__ != "Box":
        return f"action_noise={config.action_noise} needs continuous (Box) actions; {env_id} has {action}"
    return None


def memory_problem(config: Any, env_id: str) -> str | None:
    """Refuse a buffer that cannot fit in this machine's available memory: SB3 allocates a replay buffer whole,
    up front, and a rollout buffer once per rollout, however short the run (buffer_size=1e12 would fail there,
    or be killed once the buffer fills)."""
    if not hasattr(config, "n_steps") and not hasattr(config, "buffer_size"):
        return None  # ARS keeps no buffer: each perturbation plays its episodes
    key, size, per_item = _buffer(config, env_id)
    needed = size * per_item
    available = available_memory()
    if available is None or needed <= available:
        return None
    return (f"{key}={getattr(config, key)}: its buffer needs about {_bytes(needed)} ({size:,} steps x {per_item:,} "
            f"bytes of {env_id}'s observations and actions) and this machine has {_bytes(available)} available; "
            f"valid: {key} <= {_largest(config, key, available // per_item):,}")


def _buffer(config: Any, env_id: str) -> tuple[str, int, int]:
    """(the key that sizes the buffer, the steps it holds, bytes per step) as SB3 allocates it."""
    observation, action = _stored_spaces(env_id)
    obs_bytes = _item_bytes(observation)
    if hasattr(config, "n_steps"):  # RolloutBuffer: observation, action and 6 float32 per step and env
        return "n_steps", config.n_steps * config.n_envs, obs_bytes + _action_bytes(action, rollout=True) + 6 * FLOAT32
    # ReplayBuffer: buffer_size // n_envs rows of n_envs; observation and next observation, action, and 3 float32
    rows = max(config.buffer_size // config.n_envs, 1)
    return "buffer_size", rows * config.n_envs, 2 * obs_bytes + _action_bytes(action, rollout=False) + 3 * FLOAT32


def _largest(config: Any, key: str, steps: int) -> int:
    """The largest value of ``key`` whose buffer holds at most ``steps`` steps."""
    return steps // config.n_envs if key == "n_steps" else steps


def _stored_spaces(env_id: str) -> tuple[tuple[tuple[int, ...], np.dtype], gymnasium.Space]:
    """The (shape, dtype) of an observation as SB3's buffers store it, and the action space."""
    observation, action = spaces_of(env_id)
    if str(gymnasium.spec(env_id).entry_point).startswith("ale_py"):
        return ATARI_OBSERVATION, action
    kind = type(observation).__name__
    if kind == "Discrete":
        return ((1,), observation.dtype), action
    if kind == "MultiDiscrete":
        return ((len(observation.nvec),), observation.dtype), action
    return (tuple(observation.shape or ()), observation.dtype), action


def _item_bytes(shape_dtype: tuple[tuple[int, ...], np.dtype]) -> int:
    shape, dtype = shape_dtype
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def _action_bytes(space: gymnasium.Space, *, rollout: bool) -> int:
    """A replay buffer keeps the action space's dtype (float64 cast to float32); a rollout buffer keeps it as is."""
    kind = type(space).__name__
    if kind == "Box":
        dim = int(np.prod(space.shape or ()))
    elif kind == "MultiDiscrete":
        dim = len(space.nvec)
    elif kind == "MultiBinary":
        dim = int(space.n)
    else:  # Discrete: one integer
        dim = 1
    dtype = np.dtype(space.dtype)
    if dtype == np.float64 and not rollout:
        dtype = np.dtype(np.float32)
    return dim * dtype.itemsize


def available_memory() -> int | None:
    """Bytes of memory available to a new process (Linux: MemAvailable), None where it cannot be told."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _bytes(count: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count:.0f} bytes"
