"""Snake: the gymnasium contract, each rule on hand-made states, rendering, seeding and option checks."""

from __future__ import annotations

from collections import deque

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from lab_envs.games import register_with_gymnasium
from lab_envs.snake import LEFT, RIGHT, STRAIGHT, SnakeEnv

UP, EAST, DOWN, WEST = 0, 1, 2, 3


def snake_env(**kwargs) -> SnakeEnv:
    env = SnakeEnv(**kwargs)
    env.reset(seed=0)
    return env


def set_state(env: SnakeEnv, body: list[tuple[int, int]], direction: int, food: tuple[int, int]) -> None:
    env.body = deque(body)
    env.direction = direction
    env.food = food
    env.steps_since_food = 0


def test_check_env_passes() -> None:
    check_env(SnakeEnv(), skip_render_check=True)
    register_with_gymnasium()
    check_env(gymnasium.make("lab/Snake-v0").unwrapped, skip_render_check=True)


def test_spaces_and_reset() -> None:
    env = SnakeEnv()
    obs, info = env.reset(seed=3)
    assert env.action_space == gymnasium.spaces.Discrete(3)
    assert obs.shape == (18,) and obs.dtype == np.float32
    assert env.observation_space.contains(obs)
    assert len(env.body) == 3 and info["length"] == 3
    assert env.food not in env.body


def test_eating_grows_and_rewards() -> None:
    env = snake_env()
    set_state(env, [(5, 5), (6, 5), (7, 5)], UP, food=(4, 5))
    obs, reward, terminated, truncated, info = env.step(STRAIGHT)
    assert reward == 1.0 and not terminated and not truncated
    assert list(env.body) == [(4, 5), (5, 5), (6, 5), (7, 5)]
    assert info["length"] == 4
    assert env.food is not None and env.food not in env.body
    assert env.steps_since_food == 0


def test_plain_move_keeps_length() -> None:
    env = snake_env()
    set_state(env, [(5, 5), (6, 5), (7, 5)], UP, food=(0, 0))
    _, reward, terminated, truncated, _ = env.step(STRAIGHT)
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert list(env.body) == [(4, 5), (5, 5), (6, 5)]
    assert env.steps_since_food == 1


@pytest.mark.parametrize(("direction", "action", "head", "new_direction"), [
    (UP, LEFT, (5, 4), WEST), (UP, RIGHT, (5, 6), EAST),
    (EAST, LEFT, (4, 5), UP), (EAST, RIGHT, (6, 5), DOWN),
    (DOWN, LEFT, (5, 6), EAST), (WEST, RIGHT, (4, 5), UP),
])
def test_turns_are_relative_to_heading(direction: int, action: int, head: tuple[int, int], new_direction: int) -> None:
    env = snake_env()
    set_state(env, [(5, 5)], direction, food=(0, 0))
    env.step(action)
    assert env.body[0] == head
    assert env.direction == new_direction


def test_wall_kills() -> None:
    env = snake_env()
    set_state(env, [(0, 3), (1, 3), (2, 3)], UP, food=(9, 9))
    _, reward, terminated, truncated, _ = env.step(STRAIGHT)
    assert (reward, terminated, truncated) == (-1.0, True, False)
    assert list(env.body) == [(0, 3), (1, 3), (2, 3)]  # the dead snake stays whole


def test_body_kills_but_leaving_tail_is_safe() -> None:
    env = snake_env()
    # A 2x3 loop: turning right runs into the body's middle.
    set_state(env, [(5, 5), (5, 4), (6, 4), (6, 5), (6, 6), (5, 6)], UP, food=(0, 0))
    _, reward, terminated, _, _ = env.step(LEFT)  # west onto (5, 4): the neck
    assert (reward, terminated) == (-1.0, True)
    # A 2x2 loop: the head may follow the tail, which leaves the cell in the same step.
    set_state(env, [(5, 5), (5, 4), (6, 4), (6, 5)], EAST, food=(0, 0))
    _, reward, terminated, _, _ = env.step(RIGHT)  # south onto (6, 5), the tail
    assert (reward, terminated) == (0.0, False)
    assert list(env.body) == [(6, 5), (5, 5), (5, 4), (6, 4)]


def test_danger_features() -> None:
    env = snake_env()
    set_state(env, [(0, 0), (1, 0), (2, 0)], UP, food=(5, 5))
    obs = env.observation()
    assert obs[0:3].tolist() == [1.0, 1.0, 0.0]  # wall ahead and on the left, free on the right
    assert obs[3:7].tolist() == [1.0, 0.0, 0.0, 0.0]
    # Food 5 rows behind and 5 columns to the right of a snake heading up.
    assert obs[7:9] == pytest.approx([-5 / 9, 5 / 9])
    assert obs[9:13].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert obs[13:16] == pytest.approx([0.0, 0.0, 9 / 9])


def test_starvation_truncates() -> None:
    env = snake_env(starve_steps=4)
    set_state(env, [(5, 5)], EAST, food=(0, 0))
    moves = [env.step(action)[2:4] for action in (LEFT, RIGHT, RIGHT, LEFT)]
    assert moves == [(False, False)] * 3 + [(False, True)]


def test_full_board_terminates_with_reward() -> None:
    env = snake_env(size=5)
    # Boustrophedon snake filling all but (0, 0), head at (0, 1) heading west, food on the last free cell.
    cells = [(r, c) for r in range(5) for c in (range(4, -1, -1) if r % 2 else range(5))]
    body = [cell for cell in cells if cell != (0, 0)]
    set_state(env, body, WEST, food=(0, 0))
    _, reward, terminated, truncated, _ = env.step(STRAIGHT)
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert env.food is None and len(env.body) == 25


def test_food_never_on_body() -> None:
    env = snake_env(size=5)
    body = [(r, c) for r in range(5) for c in range(5)][:-3]  # 22 cells: only three free cells left
    free = {(4, 2), (4, 3), (4, 4)}
    env.body = deque(body)
    placed = {env._place_food() for _ in range(200)}
    assert placed == free
    env.body = deque([(2, 2), (2, 3), (2, 4)])
    assert all(env._place_food() not in env.body for _ in range(500))


def test_render_shape_constant() -> None:
    env = SnakeEnv(render_mode="rgb_array")
    env.reset(seed=1)
    shapes = set()
    for _ in range(30):
        frame = env.render()
        assert frame.dtype == np.uint8
        shapes.add(frame.shape)
        _, _, terminated, truncated, _ = env.step(STRAIGHT)
        if terminated or truncated:
            env.reset()
    assert shapes == {(240, 240, 3)}
    assert SnakeEnv().render() is None


def rollout(seed: int, steps: int = 300) -> list[tuple]:
    env = SnakeEnv()
    obs, _ = env.reset(seed=seed)
    trace = [obs.tolist()]
    actions = np.random.default_rng(123).integers(3, size=steps)
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(int(action))
        trace.append((obs.tolist(), reward, terminated, truncated))
        if terminated or truncated:
            obs, _ = env.reset()
            trace.append(obs.tolist())
    return trace


def test_seeding_is_deterministic() -> None:
    assert rollout(7) == rollout(7)
    assert rollout(7) != rollout(8)


@pytest.mark.parametrize("kwargs", [{"size": 4}, {"size": 10.0}, {"starve_steps": 0}, {"render_mode": "human"}])
def test_invalid_options(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SnakeEnv(**kwargs)
