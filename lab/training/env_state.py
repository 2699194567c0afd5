"""Snapshots of a gymnasium env's state as JSON: what lets an agent resume mid-episode bit-identically.

An env is snapshotted layer by layer (each wrapper, then the unwrapped env): every attribute that holds plain
data (numbers, strings, arrays, tuples, lists, dicts, deques, sets) and every random generator (the env's own,
its spaces') is written with its type, so that restoring it gives back equal values of equal types. An env that
holds anything else (a physics engine's world, an emulator) cannot be snapshotted: :func:`snapshot_env` returns
None and says why, and the agent resumes with a fresh episode instead. An env class can take over with
``get_state() -> dict`` and ``set_state(dict)`` of its own (JSON-able values).

Nothing here unpickles: a snapshot is JSON, and restoring one only sets attributes to decoded plain values.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

# Attributes that are configuration, caches or rendering, never state a step depends on.
SKIPPED = frozenset({
    "env", "spec", "metadata", "_metadata", "_cached_spec", "_saved_kwargs", "_ezpickle_args", "_ezpickle_kwargs",
    "render_mode", "screen", "clock", "window", "surf", "viewer", "isopen", "_action_space", "_observation_space",
})
SPACES = ("action_space", "observation_space")


class NotSnapshottable(ValueError):
    """The env holds state that is not plain data."""


def snapshot_env(env: Any) -> tuple[list[dict[str, Any]] | None, str]:
    """The state of ``env`` (a gymnasium env, wrappers included) as a JSON-able list, one entry per layer, and
    an empty reason; or None and why it cannot be snapshotted."""
    try:
        return [_layer_state(layer) for layer in _layers(env)], ""
    except NotSnapshottable as e:
        return None, str(e)


def restore_env(env: Any, state: list[dict[str, Any]]) -> None:
    """Put ``env`` (built like the snapshotted one) back in the snapshotted state."""
    layers = list(_layers(env))
    if len(layers) != len(state):
        raise ValueError(f"the env has {len(layers)} layers, the snapshot {len(state)}")
    for layer, saved in zip(layers, state, strict=True):
        if saved["class"] != type(layer).__name__:
            raise ValueError(f"env layer {type(layer).__name__} does not match the snapshot's {saved['class']}")
        if "custom" in saved:
            layer.set_state(saved["custom"])
            continue
        for name, value in saved["attributes"].items():
            setattr(layer, name, decode(value))
        for name, rng in saved["spaces"].items():
            space = getattr(layer, name)
            space.seed(0)  # creates the generator; its state is then replaced
            space.np_random.bit_generator.state = rng


def _layers(env: Any) -> Iterator[Any]:
    while True:
        yield env
        inner = vars(env).get("env")
        if inner is None:
            return
        env = inner


def _layer_state(layer: Any) -> dict[str, Any]:
    state: dict[str, Any] = {"class": type(layer).__name__}
    if callable(getattr(type(layer), "get_state", None)) and callable(getattr(type(layer), "set_state", None)):
        state["custom"] = layer.get_state()
        return state
    attributes = {}
    for name, value in vars(layer).items():
        if name in SKIPPED or name in SPACES:
            continue
        try:
            attributes[name] = encode(value)
        except NotSnapshottable as e:
            raise NotSnapshottable(f"{type(layer).__name__}.{name} holds {e}") from None
    state["attributes"] = attributes
    state["spaces"] = {name: vars(layer)[name]._np_random.bit_generator.state for name in SPACES
                       if name in vars(layer) and getattr(vars(layer)[name], "_np_random", None) is not None}
    return state


def encode(value: Any) -> Any:
    """A JSON-able, typed form of a plain value; NotSnapshottable for anything else."""
    import numpy as np

    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return {"ndarray": value.tolist(), "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return {"scalar": value.item(), "dtype": value.dtype.str}
    if isinstance(value, np.random.Generator):
        return {"generator": value.bit_generator.state}
    if isinstance(value, np.dtype) and value.kind in "biuf":  # e.g. sb3-contrib's TimeFeatureWrapper.dtype
        return {"numpy_dtype": value.str}
    if isinstance(value, deque):
        return {"deque": [encode(v) for v in value], "maxlen": value.maxlen}
    if isinstance(value, tuple):
        return {"tuple": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, set | frozenset):
        return {"set": [encode(v) for v in value], "frozen": isinstance(value, frozenset)}
    if isinstance(value, dict):
        return {"dict": [[encode(k), encode(v)] for k, v in value.items()]}
    raise NotSnapshottable(f"a {type(value).__module__}.{type(value).__qualname__}")


def decode(value: Any) -> Any:
    """The value :func:`encode` encoded."""
    import numpy as np

    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "ndarray" in value:
        return np.array(value["ndarray"], dtype=np.dtype(value["dtype"])).reshape(value["shape"])
    if "scalar" in value:
        return np.dtype(value["dtype"]).type(value["scalar"])
    if "numpy_dtype" in value:
        return np.dtype(value["numpy_dtype"])
    if "generator" in value:
        generator = np.random.Generator(getattr(np.random, value["generator"]["bit_generator"])())
        generator.bit_generator.state = value["generator"]
        return generator
    if "deque" in value:
        return deque((decode(v) for v in value["deque"]), maxlen=value["maxlen"])
    if "tuple" in value:
        return tuple(decode(v) for v in value["tuple"])
    if "set" in value:
        items = (decode(v) for v in value["set"])
        return frozenset(items) if value["frozen"] else set(items)
    return {decode(k): decode(v) for k, v in value["dict"]}
