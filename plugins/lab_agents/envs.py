"""An agent's envs as its config describes them: the env's own keyword arguments (``env_kwargs``), gymnasium
wrappers around each env (``env_wrapper``, the Zoo's key), running normalisation (``normalize``, ``norm_obs``,
``norm_reward``) and frame stacking (``frame_stack``), built in the Zoo's order (rl_zoo3/exp_manager.py,
``create_envs``): Monitor, the wrappers, VecNormalize, VecFrameStack.

Wrapper names resolve only inside the modules that ship wrappers (:data:`WRAPPER_MODULES`): a name in a config
file or a logged run cannot make lab import anything else. Light at import (gymnasium only): the checks run on
every ``lab run``/``lab show``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from typing import Any

import gymnasium

from lab_envs.novel import import_zoo_module

# Where wrapper names are looked up, in this order, for a short name (TimeFeatureWrapper); a dotted name must lie
# inside one of them. rl_zoo3.wrappers is last: it is the slowest to import.
WRAPPER_MODULES = ("gymnasium.wrappers", "stable_baselines3.common.atari_wrappers", "sb3_contrib.common.wrappers",
                   "rl_zoo3.wrappers")
ATARI_WRAPPER = "AtariWrapper"
ATARI_FRAME_SKIP = 4  # the standard Atari preprocessing (SB3's AtariWrapper, as in the DQN paper and the Zoo)
ATARI_FRAME_STACK = 4

WrapperSpec = tuple[type[gymnasium.Wrapper], dict[str, Any]]


def is_atari(env_id: str) -> bool:
    return str(gymnasium.spec(env_id).entry_point).startswith("ale_py")


# ---------------------------------------------------------------------------------------------- wrappers


def wrapper_class(name: str) -> type[gymnasium.Wrapper]:
    """The gymnasium wrapper class a name stands for; ValueError saying what is valid when there is none."""
    if "." in name:
        module_name, _, attribute = name.rpartition(".")
        if not any(module_name == m or module_name.startswith(m + ".") for m in WRAPPER_MODULES):
            raise ValueError(f"wrapper {name!r} is outside the modules lab takes wrappers from; valid: a name in "
                             f"{', '.join(WRAPPER_MODULES)}")
        candidates = [(module_name, attribute)]
    else:
        candidates = [(module_name, name) for module_name in WRAPPER_MODULES]
    for module_name, attribute in candidates:
        try:
            module = import_zoo_module(module_name)  # any module; rl_zoo3's without its patch to gymnasium
        except ImportError:
            continue
        found = getattr(module, attribute, None)
        if isinstance(found, type) and issubclass(found, gymnasium.Wrapper):
            return found
    raise ValueError(f"wrapper {name!r} does not exist; valid: a gymnasium wrapper class of "
                     f"{', '.join(WRAPPER_MODULES)} (e.g. TimeFeatureWrapper, AtariWrapper)")


def wrapper_specs(entries: list[Any] | None, env_id: str) -> list[WrapperSpec]:
    """``env_wrapper`` as (class, keyword arguments) pairs; null is AtariWrapper on Atari games, nothing
    elsewhere. AtariWrapper skips 4 frames itself (ALE's own frame skipping is turned off, see env_kwargs)."""
    if entries is None:
        entries = [ATARI_WRAPPER] if is_atari(env_id) else []
    specs: list[WrapperSpec] = []
    for entry in entries:
        name, kwargs = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
        cls = wrapper_class(name)
        specs.append((cls, dict(kwargs or {})))
    return specs


def wrap(env: gymnasium.Env, specs: list[WrapperSpec]) -> gymnasium.Env:
    for cls, kwargs in specs:
        env = cls(env, **kwargs)
    return env


def uses_atari_wrapper(specs: list[WrapperSpec]) -> bool:
    return any(cls.__name__ == ATARI_WRAPPER for cls, _ in specs)


def env_kwargs(config: Any, env_id: str, *, render: bool = False) -> dict[str, Any]:
    """The env's constructor arguments: the config's, with ALE's frame skipping off under AtariWrapper (which
    skips with max-pooling itself) and the render mode when frames are wanted."""
    kwargs = dict(config.env_kwargs)
    if is_atari(env_id) and uses_atari_wrapper(wrapper_specs(config.env_wrapper, env_id)):
        kwargs.setdefault("frameskip", 1)
    if render:
        kwargs["render_mode"] = "rgb_array"
    return kwargs


def frame_stack(config: Any, env_id: str) -> int:
    """Observations stacked: the config's, or 4 on Atari games and none elsewhere."""
    if config.frame_stack is not None:
        return config.frame_stack
    return ATARI_FRAME_STACK if is_atari(env_id) else 1


# ---------------------------------------------------------------------------------------------- checks


def make_checked(env_id: str, config: Any) -> tuple[gymnasium.Env | None, str | None]:
    """One env built as the agent will build it (env_kwargs and wrappers), or why it cannot be."""
    problem = kwargs_problem(env_id, dict(config.env_kwargs))
    if problem:
        return None, problem
    try:
        specs = wrapper_specs(config.env_wrapper, env_id)
    except ValueError as e:
        return None, f"env_wrapper: {e}"
    try:
        env = gymnasium.make(env_id, **env_kwargs(config, env_id))
    except Exception as e:  # an env_kwargs value the env refuses (e.g. a wrong type)
        return None, f"env_kwargs={config.env_kwargs}: {env_id} refused them ({type(e).__name__}: {e})"
    try:
        return wrap(env, specs), None
    except Exception as e:
        env.close()
        return None, f"env_wrapper: {type(e).__name__}: {e}"


def kwargs_problem(env_id: str, kwargs: Mapping[str, Any]) -> str | None:
    """An env_kwargs key the env's constructor does not take, with the ones it does."""
    if not kwargs:
        return None
    accepted = accepted_kwargs(env_id)
    if accepted is None:  # the constructor takes **kwargs: making it tells
        return None
    unknown = sorted(set(kwargs) - set(accepted))
    if not unknown:
        return None
    return (f"env_kwargs.{unknown[0]}: {env_id} does not take {unknown[0]!r}; valid: "
            f"{', '.join(accepted) or 'none (it takes no arguments)'}")


def accepted_kwargs(env_id: str) -> list[str] | None:
    """The keyword arguments an env's constructor takes (None if it takes any: ``**kwargs``)."""
    entry_point = gymnasium.spec(env_id).entry_point
    if isinstance(entry_point, str):
        module_name, _, attribute = entry_point.partition(":")
        entry_point = getattr(importlib.import_module(module_name), attribute)
    try:
        parameters = inspect.signature(entry_point).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters if p.name not in ("self", "render_mode")
            and p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]


def spaces(env_id: str, config: Any) -> tuple[gymnasium.Space, gymnasium.Space] | str:
    """(observation space, action space) of the env as the config builds it, or why it cannot be built."""
    env, problem = make_checked(env_id, config)
    if env is None:
        return str(problem)
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()

