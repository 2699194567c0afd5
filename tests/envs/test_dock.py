"""Dock's rules on hand-made states, its gymnasium contract, rendering and seeding."""

from __future__ import annotations

import math

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from lab_envs import games
from lab_envs.dock import (
    CONTROL_COST,
    DOCK_BONUS,
    DOCK_SPEED,
    DRAG,
    DT,
    MAX_SPEED,
    MIN_START_DISTANCE,
    SHAPING,
    THRUST,
    DockEnv,
)


def make(**options: float) -> DockEnv:
    env = DockEnv(**options)
    env.reset(seed=0)
    return env


def place(env: DockEnv, position: tuple[float, float], velocity: tuple[float, float],
          pad: tuple[float, float] = (0.5, 0.5)) -> None:
    env.position, env.velocity, env.pad = position, velocity, pad


@pytest.mark.filterwarnings("error")  # the checker's warnings count as failures too
def test_check_env_passes() -> None:
    games.register_with_gymnasium()
    check_env(gymnasium.make("lab/Dock-v0", render_mode="rgb_array").unwrapped)
    env = gymnasium.make("lab/Dock-v0")
    check_env(env.unwrapped)
    assert env.spec is not None and env.spec.max_episode_steps == 200 and env.spec.reward_threshold == 13.0


def test_physics_step_matches_the_documented_integration() -> None:
    env = make()
    place(env, (0.0, 0.0), (0.2, -0.1), pad=(0.7, 0.7))
    env.step(np.array([0.5, 1.0], dtype=np.float32))
    vx = 0.2 + (THRUST * 0.5 - DRAG * 0.2) * DT
    vy = -0.1 + (THRUST * 1.0 - DRAG * -0.1 - 0.5) * DT
    assert env.velocity == pytest.approx((vx, vy))
    assert env.position == pytest.approx((vx * DT, vy * DT))
    assert np.allclose(env.observe(), [vx * DT, vy * DT, vx / MAX_SPEED, vy / MAX_SPEED,
                                       (0.7 - vx * DT) / 2, (0.7 - vy * DT) / 2], atol=1e-6)


@pytest.mark.parametrize(("action", "sign_x", "sign_y"), [((1, 0), 1, 0), ((-1, 0), -1, 0), ((0, 1), 0, 1)])
def test_thrust_pushes_the_right_way(action: tuple[int, int], sign_x: int, sign_y: int) -> None:
    env = make(gravity=0.0)
    place(env, (0.0, 0.0), (0.0, 0.0), pad=(0.7, -0.7))
    env.step(np.array(action, dtype=np.float32))
    vx, vy = env.velocity
    assert np.sign(vx) == sign_x and np.sign(vy) == sign_y
    assert abs(vx) + abs(vy) == pytest.approx(THRUST * DT)


def test_gravity_pulls_down_without_thrust() -> None:
    env = make(gravity=1.0)
    place(env, (0.0, 0.0), (0.0, 0.0), pad=(0.7, -0.7))
    env.step(np.zeros(2, dtype=np.float32))
    assert env.velocity == pytest.approx((0.0, -1.0 * DT))


def test_actions_are_clipped() -> None:
    clipped, raw = make(), make()
    place(clipped, (0.0, 0.0), (0.0, 0.0), pad=(0.7, 0.7))
    place(raw, (0.0, 0.0), (0.0, 0.0), pad=(0.7, 0.7))
    _, reward_clipped, *_ = clipped.step(np.array([1.0, -1.0], dtype=np.float32))
    _, reward_raw, *_ = raw.step(np.array([7.0, -30.0], dtype=np.float32))
    assert raw.velocity == clipped.velocity and raw.position == clipped.position
    assert reward_raw == reward_clipped  # the control cost is on the clipped action too


def test_docking_on_the_pad_slowly_terminates_with_the_bonus() -> None:
    env = make()
    # Hovering exactly: thrust cancels gravity, so the craft stays put on the pad's centre.
    place(env, (0.5, 0.5), (0.0, 0.0), pad=(0.5, 0.5))
    hover = 0.5 / THRUST
    _, reward, terminated, truncated, info = env.step(np.array([0.0, hover], dtype=np.float32))
    assert terminated and not truncated and info["docked"]
    assert reward == pytest.approx(DOCK_BONUS - CONTROL_COST * hover**2)


def test_fast_fly_over_does_not_dock() -> None:
    env = make(gravity=0.0)
    place(env, (0.4, 0.5), (1.0, 0.0), pad=(0.5, 0.5))  # passes through the pad's centre at speed 0.95
    _, reward, terminated, _, info = env.step(np.zeros(2, dtype=np.float32))
    assert env.distance() < env.pad_radius and info["speed"] > DOCK_SPEED
    assert not terminated and not info["docked"] and reward < DOCK_BONUS / 2


def test_slow_but_off_the_pad_does_not_dock() -> None:
    env = make(gravity=0.0)
    place(env, (0.0, 0.0), (0.0, 0.0), pad=(0.5, 0.5))
    _, reward, terminated, _, _ = env.step(np.zeros(2, dtype=np.float32))
    assert not terminated and reward == 0.0


def test_walls_stop_the_craft_without_ending_the_episode() -> None:
    env = make(gravity=0.0)
    place(env, (0.99, -0.99), (1.5, -1.5), pad=(0.0, 0.0))
    obs, _, terminated, truncated, _ = env.step(np.array([1.0, -1.0], dtype=np.float32))
    assert env.position == (1.0, -1.0) and env.velocity == (0.0, 0.0)
    assert not terminated and not truncated and env.observation_space.contains(obs)
    # Moving away from the wall is still possible.
    env.step(np.array([-1.0, 1.0], dtype=np.float32))
    assert env.velocity[0] < 0 < env.velocity[1]


def test_velocity_is_capped() -> None:
    env = make(gravity=0.0)
    place(env, (0.0, 0.0), (MAX_SPEED, -MAX_SPEED), pad=(0.7, 0.7))
    env.step(np.array([1.0, -1.0], dtype=np.float32))
    assert env.velocity == (MAX_SPEED, -MAX_SPEED)  # uncapped it would be (2.05, -2.05)
    assert env.position == pytest.approx((MAX_SPEED * DT, -MAX_SPEED * DT))


def test_moving_toward_the_pad_pays_more_than_moving_away() -> None:
    env = make(gravity=0.0)
    place(env, (0.0, 0.0), (0.5, 0.0), pad=(0.6, 0.0))
    _, toward, *_ = env.step(np.zeros(2, dtype=np.float32))
    place(env, (0.0, 0.0), (-0.5, 0.0), pad=(0.6, 0.0))
    _, away, *_ = env.step(np.zeros(2, dtype=np.float32))
    assert toward > 0 > away
    step = 0.5 * (1 - DRAG * DT) * DT
    assert toward == pytest.approx(SHAPING * step) and away == pytest.approx(-SHAPING * step)


def test_reset_puts_the_craft_at_rest_away_from_the_pad() -> None:
    env = DockEnv()
    for seed in range(50):
        obs, info = env.reset(seed=seed)
        assert env.velocity == (0.0, 0.0) and info["distance"] >= MIN_START_DISTANCE
        assert env.observation_space.contains(obs) and np.array_equal(obs, env.observe())


def test_render_shape_and_dtype_are_constant() -> None:
    env = DockEnv(render_mode="rgb_array")
    env.reset(seed=3)
    first = env.render()
    assert first is not None and first.shape == (240, 240, 3) and first.dtype == np.uint8
    for _ in range(20):
        env.step(env.action_space.sample())
        frame = env.render()
        assert frame is not None and frame.shape == first.shape and frame.dtype == np.uint8
    assert not np.array_equal(frame, first)  # the craft moved
    assert DockEnv().render() is None


def rollout(seed: int, steps: int = 60) -> list[tuple[float, ...]]:
    env = gymnasium.make("lab/Dock-v0")
    env.reset(seed=seed)
    actions = np.random.default_rng(99).uniform(-1, 1, size=(steps, 2)).astype(np.float32)
    trace = []
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        trace.append((*obs.tolist(), reward, terminated, truncated))
    return trace


def test_same_seed_same_trajectory_different_seed_differs() -> None:
    games.register_with_gymnasium()
    assert rollout(5) == rollout(5)
    assert rollout(5) != rollout(6)


@pytest.mark.parametrize("options", [{"gravity": -0.1}, {"gravity": THRUST}, {"gravity": math.nan},
                                     {"pad_radius": 0.0}, {"pad_radius": 0.6}, {"render_mode": "human"}])
def test_invalid_options_raise(options: dict) -> None:
    with pytest.raises(ValueError):
        DockEnv(**options)
