"""Maze: the gymnasium contract, each rule on hand-made layouts, generation, rendering, seeding and options."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from lab_envs.games import register_with_gymnasium
from lab_envs.maze import STEP_PENALTY, MazeEnv, bfs_distances

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3


def hand_made(walls: list[str], agent: tuple[int, int], goal: tuple[int, int]) -> MazeEnv:
    """A 5x5 maze from a picture ('#' wall, '.' floor)."""
    env = MazeEnv(size=5)
    env.reset(seed=0)
    env.walls = np.array([[ch == "#" for ch in line] for line in walls])
    env.agent, env.goal = agent, goal
    env.visits = {agent: 1}
    return env


LAYOUT = [
    ".....",
    ".##..",
    ".#...",
    ".....",
    "....#",
]


def test_check_env_passes() -> None:
    check_env(MazeEnv(), skip_render_check=True)
    register_with_gymnasium()
    check_env(gymnasium.make("lab/Maze-v0").unwrapped, skip_render_check=True)


def test_spaces() -> None:
    env = MazeEnv()
    obs, _ = env.reset(seed=0)
    assert env.action_space == gymnasium.spaces.Discrete(4)
    assert obs.shape == (54,) and obs.dtype == np.float32
    assert env.observation_space.contains(obs)
    assert MazeEnv(view_radius=1).observation_space.shape == (22,)


def test_moves_and_step_penalty() -> None:
    env = hand_made(LAYOUT, agent=(3, 2), goal=(0, 4))
    expected = {UP: (2, 2), RIGHT: (3, 3), DOWN: (4, 2), LEFT: (3, 1)}
    for action, cell in expected.items():
        env.agent = (3, 2)
        _, reward, terminated, truncated, _ = env.step(action)
        assert env.agent == cell
        assert (reward, terminated, truncated) == (STEP_PENALTY, False, False)
    assert STEP_PENALTY == -0.01


def test_walls_and_edges_block() -> None:
    env = hand_made(LAYOUT, agent=(2, 2), goal=(0, 4))
    for action in (UP, LEFT):  # (1, 2) and (2, 1) are walls
        _, reward, terminated, _, _ = env.step(action)
        assert env.agent == (2, 2) and reward == STEP_PENALTY and not terminated
    env.agent = (4, 3)
    env.step(RIGHT)  # (4, 4) is a wall
    env.step(DOWN)  # off the board
    assert env.agent == (4, 3)


def test_goal_rewards_and_terminates() -> None:
    env = hand_made(LAYOUT, agent=(0, 3), goal=(0, 4))
    _, reward, terminated, truncated, _ = env.step(RIGHT)
    assert (reward, terminated, truncated) == (1.0, True, False)


def test_observation_layout() -> None:
    env = hand_made(LAYOUT, agent=(0, 0), goal=(4, 2))
    obs = env.observation()
    walls = obs[:24].reshape(-1).tolist()
    # 5x5 window around (0, 0) without its centre: rows -2..2, columns -2..2; off-board counts as wall.
    window = [[1.0] * 5, [1.0] * 5, [1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 1.0, 1.0], [1.0, 1.0, 0.0, 1.0, 0.0]]
    assert walls == [value for row in window for value in row]
    assert obs[24:48].sum() == 0.0  # the trail leaves the agent's own cell out of the window
    assert obs[48:50] == pytest.approx([4 / 4, 2 / 4])
    assert obs[50:].tolist() == [0.0, 1.0, 1.0, 0.0]  # goal is right and down
    env.step(DOWN)
    env.step(UP)
    obs = env.observation()
    assert obs[24 + 16] == pytest.approx(0.1)  # (1, 0), just below the agent, was visited once
    assert env.visits == {(0, 0): 2, (1, 0): 1}


def test_layouts_are_solvable_and_far() -> None:
    env = MazeEnv()
    for seed in range(300):
        env.reset(seed=seed)
        assert not env.walls[env.agent] and not env.walls[env.goal]
        distance = bfs_distances(env.walls, env.agent).get(env.goal)
        assert distance is not None and distance >= env.size - 1
        assert 0.15 <= env.walls.mean() <= 0.3


def test_walls_are_read_only_copies() -> None:
    env = MazeEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError):
        env.walls[0, 0] = True
    with pytest.raises(ValueError):
        env.walls = np.zeros((3, 3), dtype=bool)


def test_seeds_give_different_layouts() -> None:
    env = MazeEnv()
    layouts = set()
    for seed in range(20):
        env.reset(seed=seed)
        layouts.add((env.walls.tobytes(), env.agent, env.goal))
    assert len(layouts) == 20


def rollout(seed: int, steps: int = 300) -> list:
    env = MazeEnv()
    obs, _ = env.reset(seed=seed)
    trace = [obs.tolist()]
    for action in np.random.default_rng(5).integers(4, size=steps):
        obs, reward, terminated, truncated, _ = env.step(int(action))
        trace.append((obs.tolist(), reward, terminated))
        if terminated:
            obs, _ = env.reset()
            trace.append(obs.tolist())
    return trace


def test_seeding_is_deterministic() -> None:
    assert rollout(11) == rollout(11)
    assert rollout(11) != rollout(12)
    first, second = MazeEnv(), MazeEnv()
    first.reset(seed=4)
    second.reset(seed=4)
    assert np.array_equal(first.walls, second.walls) and (first.agent, first.goal) == (second.agent, second.goal)


def test_time_limit_from_registry() -> None:
    register_with_gymnasium()
    env = gymnasium.make("lab/Maze-v0")
    env.reset(seed=0)
    wall = np.argwhere(env.unwrapped.walls)[0]
    env.unwrapped.goal = (int(wall[0]), int(wall[1]))  # unreachable: only the TimeLimit can end the episode
    steps = 0
    truncated = False
    while not truncated:
        _, _, terminated, truncated, _ = env.step(0)
        assert not terminated
        steps += 1
    assert steps == env.spec.max_episode_steps == 100


def test_render_shape_constant() -> None:
    env = MazeEnv(render_mode="rgb_array")
    env.reset(seed=2)
    shapes = set()
    for action in [0, 1, 2, 3] * 5:
        frame = env.render()
        assert frame.dtype == np.uint8
        shapes.add(frame.shape)
        env.step(action)
    env.reset(seed=3)
    shapes.add(env.render().shape)
    assert shapes == {(231, 231, 3)}
    assert MazeEnv().render() is None


@pytest.mark.parametrize("kwargs", [
    {"size": 4}, {"size": 11.0}, {"wall_density": 0.5}, {"wall_density": -0.1}, {"view_radius": 0},
    {"render_mode": "human"},
])
def test_invalid_options(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        MazeEnv(**kwargs)
