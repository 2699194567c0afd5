"""Env snapshots (lab.api.snapshot_env/restore_env): JSON that puts a built env back mid-episode exactly, for
classic control and lab's games; None, with the reason, for envs holding a physics engine or an emulator."""

from __future__ import annotations

import json

import gymnasium
import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env

from lab.api import restore_env, snapshot_env
from lab.training.env_state import decode, encode

SNAPSHOTTABLE = ["CartPole-v1", "Pendulum-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0",
                 "lab/Snake-v0", "lab/Maze-v0", "lab/Dock-v0"]


@pytest.fixture(autouse=True, scope="module")
def lab_games() -> None:
    from lab_envs.games import register_with_gymnasium

    register_with_gymnasium()  # lab/Snake-v0, lab/Maze-v0, lab/Dock-v0


def stepped(env_id: str, seed: int, steps: int):
    env = make_vec_env(env_id, n_envs=2, seed=seed)
    env.reset()
    env.action_space.seed(seed)
    for _ in range(steps):
        env.step(np.array([env.action_space.sample() for _ in range(2)]))
    return env


@pytest.mark.parametrize("env_id", SNAPSHOTTABLE)
def test_a_restored_env_continues_exactly_like_the_original(env_id: str):
    original = stepped(env_id, seed=0, steps=57)
    saved = json.dumps([snapshot_env(env)[0] for env in original.envs])
    copy = stepped(env_id, seed=99, steps=3)  # built the same way, elsewhere in its own episodes
    for env, state in zip(copy.envs, json.loads(saved), strict=True):
        restore_env(env, state)
    draw = np.random.default_rng(1)
    for _ in range(300):  # through episode ends and resets: the envs' own RNGs were restored too
        actions = np.array([original.action_space.sample() for _ in range(2)])
        if isinstance(original.action_space, gymnasium.spaces.Box):
            actions = draw.uniform(-1, 1, actions.shape).astype(actions.dtype)
        expected, got = original.step(actions), copy.step(actions)
        for a, b in zip(expected[:3], got[:3], strict=True):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("env_id", ["LunarLander-v3", "ALE/Pong-v5"])
def test_an_env_with_an_engine_is_not_snapshotted_and_says_why(env_id: str):
    if env_id.startswith("ALE/"):
        import ale_py

        gymnasium.register_envs(ale_py)
    env = gymnasium.make(env_id)
    env.reset(seed=0)
    state, reason = snapshot_env(env)
    assert state is None and ("b2World" in reason or "ALEInterface" in reason), reason


@pytest.mark.parametrize("value", [
    None, 3, 2.5, "x", (1, (2.0, "a")), [1, [2]], {(1, 2): 3, "k": [4]}, {1, 2}, frozenset({3}),
    np.arange(6, dtype=np.float32).reshape(2, 3), np.int64(7), np.array([True, False]), np.random.default_rng(5),
])
def test_plain_values_round_trip_with_their_types(value):
    back = decode(json.loads(json.dumps(encode(value))))
    assert type(back) is type(value)
    if isinstance(value, np.random.Generator):
        assert back.random() == value.random()
    elif isinstance(value, np.ndarray):
        assert back.dtype == value.dtype and np.array_equal(back, value)
    else:
        assert back == value
