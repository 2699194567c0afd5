"""Dock: steer a thrusting craft onto a docking pad and come to rest on it (continuous control)."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from lab_envs import draw

# Physics, in arena units (the arena is the square [-1, 1] x [-1, 1], y points up) and seconds.
DT = 0.1  # seconds per step
THRUST = 1.5  # acceleration per unit of action, per axis
DRAG = 0.5  # linear drag coefficient (1/s): the craft glides but does not drift forever
MAX_SPEED = 2.0  # per-axis velocity cap, so the observation stays bounded
DOCK_SPEED = 0.15  # docked only if the speed (norm) is at most this...
# ...and the craft's centre is within pad_radius of the pad's centre.

# Rewards.
SHAPING = 5.0  # reward per unit of distance gained towards the pad (potential-based)
CONTROL_COST = 0.05  # times |action|^2 per step: fuel is not free, so hovering forever costs
DOCK_BONUS = 10.0  # paid once, on the step that docks

# Reset distribution.
PAD_SPAN = 0.75  # pad centre uniform in [-PAD_SPAN, PAD_SPAN]^2
START_SPAN = 0.9  # craft start uniform in [-START_SPAN, START_SPAN]^2 ...
MIN_START_DISTANCE = 0.8  # ... at least this far from the pad

ARENA = 1.0  # half-width of the arena

Color = tuple[int, int, int]
BACKGROUND: Color = (14, 18, 38)
ARENA_COLOR: Color = (28, 34, 64)
PAD_COLOR: Color = (40, 170, 90)
PAD_CORE_COLOR: Color = (90, 230, 140)
CRAFT_COLOR: Color = (235, 235, 245)
FLAME_COLOR: Color = (255, 150, 40)


class DockEnv(gym.Env):
    """Fly a small craft onto a docking pad and come to rest on it.

    **Arena and physics.** The arena is the square ``[-1, 1] x [-1, 1]`` (y up). Each step lasts ``DT = 0.1`` s and
    integrates (semi-implicit Euler)::

        v += (THRUST * action - DRAG * v - (0, gravity)) * DT      # THRUST = 1.5, DRAG = 0.5
        v  = clip(v, -2, 2)                                        # per axis
        p += v * DT

    The arena's edges are inelastic walls: a craft that would leave is put back on the edge and the velocity
    component into the wall is zeroed. Leaving is impossible, so there is no crash and no penalty for it.

    **Actions.** ``Box(-1, 1, (2,), float32)``: thrust along x and y as a fraction of ``THRUST``. Values outside
    ``[-1, 1]`` are clipped per component (NaN counts as 0).

    **Observation.** ``Box(-1, 1, (6,), float32)``::

        [x, y, vx / 2, vy / 2, (pad_x - x) / 2, (pad_y - y) / 2]

    **Reward** per step: ``5 * (distance_before - distance_after)`` (potential-based shaping towards the pad's
    centre) ``- 0.05 * |action|^2`` (control cost), plus ``+10`` on the step the craft docks.

    **Termination.** Docked: the craft's centre is within ``pad_radius`` of the pad's centre and its speed (norm)
    is at most ``DOCK_SPEED = 0.15``. A fast fly-over does not dock. **Truncation** comes only from the time limit
    (``max_episode_steps``, 200 when made with ``gymnasium.make("lab/Dock-v0")``).

    **Reset.** The pad's centre is uniform in ``[-0.75, 0.75]^2``; the craft starts at rest, uniform in
    ``[-0.9, 0.9]^2`` and at least 0.8 away from the pad.

    **Options.** ``gravity`` (default 0.5, in ``[0, THRUST)``): downward acceleration, so hovering needs thrust;
    ``pad_radius`` (default 0.1, in ``(0, 0.5]``): the docking tolerance.

    The state is plain attributes, settable for tests: ``position`` and ``velocity`` (``(x, y)`` tuples of floats)
    and ``pad`` (the pad's centre); ``observe()`` returns the observation of the current state.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode: str | None = None, gravity: float = 0.5, pad_radius: float = 0.1) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        if not 0.0 <= gravity < THRUST:
            raise ValueError(f"gravity must be in [0, {THRUST}) so the craft can hover, got {gravity!r}")
        if not 0.0 < pad_radius <= 0.5:
            raise ValueError(f"pad_radius must be in (0, 0.5], got {pad_radius!r}")
        self.render_mode = render_mode
        self.gravity = float(gravity)
        self.pad_radius = float(pad_radius)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(6,), dtype=np.float32)
        self.position: tuple[float, float] = (0.0, 0.0)
        self.velocity: tuple[float, float] = (0.0, 0.0)
        self.pad: tuple[float, float] = (0.0, 0.0)
        self.last_thrust: tuple[float, float] = (0.0, 0.0)  # only for the flame in render()

    def observe(self) -> np.ndarray:
        """The observation of the current state (layout in the class docstring)."""
        x, y = self.position
        vx, vy = self.velocity
        pad_x, pad_y = self.pad
        return np.array([x, y, vx / MAX_SPEED, vy / MAX_SPEED, (pad_x - x) * 0.5, (pad_y - y) * 0.5],
                        dtype=np.float32)

    def distance(self) -> float:
        """Distance from the craft to the pad's centre."""
        return math.hypot(self.pad[0] - self.position[0], self.pad[1] - self.position[1])

    def docked(self) -> bool:
        """On the pad and slow enough: the episode's goal."""
        return self.distance() <= self.pad_radius and math.hypot(*self.velocity) <= DOCK_SPEED

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        rng = self.np_random
        self.pad = (float(rng.uniform(-PAD_SPAN, PAD_SPAN)), float(rng.uniform(-PAD_SPAN, PAD_SPAN)))
        # Rejection sampling: a start on top of the pad would make the episode trivial.
        while True:
            self.position = (float(rng.uniform(-START_SPAN, START_SPAN)), float(rng.uniform(-START_SPAN, START_SPAN)))
            if self.distance() >= MIN_START_DISTANCE:
                break
        self.velocity = (0.0, 0.0)
        self.last_thrust = (0.0, 0.0)
        return self.observe(), {"distance": self.distance(), "speed": 0.0, "docked": False}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        thrust_x, thrust_y = _clip_unit(action[0]), _clip_unit(action[1])
        before = self.distance()
        self._integrate(thrust_x, thrust_y)
        after = self.distance()
        docked = self.docked()
        reward = SHAPING * (before - after) - CONTROL_COST * (thrust_x * thrust_x + thrust_y * thrust_y)
        if docked:
            reward += DOCK_BONUS
        speed = math.hypot(*self.velocity)
        return self.observe(), reward, docked, False, {"distance": after, "speed": speed, "docked": docked}

    def _integrate(self, thrust_x: float, thrust_y: float) -> None:
        """One physics step (semi-implicit Euler), then the walls."""
        x, y = self.position
        vx, vy = self.velocity
        vx += (THRUST * thrust_x - DRAG * vx) * DT
        vy += (THRUST * thrust_y - DRAG * vy - self.gravity) * DT
        vx = min(max(vx, -MAX_SPEED), MAX_SPEED)
        vy = min(max(vy, -MAX_SPEED), MAX_SPEED)
        x += vx * DT
        y += vy * DT
        x, vx = _wall(x, vx)
        y, vy = _wall(y, vy)
        self.position, self.velocity = (x, y), (vx, vy)
        self.last_thrust = (thrust_x, thrust_y)

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        size, margin = 240, 8
        scale = (size - 2 * margin) / (2 * ARENA)  # pixels per arena unit

        def to_pixels(x: float, y: float) -> tuple[float, float]:  # (row, column); y points up on screen
            return margin + (ARENA - y) * scale, margin + (x + ARENA) * scale

        frame = draw.canvas(size, size, BACKGROUND)
        draw.rect(frame, margin, margin, size - 2 * margin, size - 2 * margin, ARENA_COLOR)
        pad_row, pad_col = to_pixels(*self.pad)
        draw.disc(frame, pad_row, pad_col, self.pad_radius * scale, PAD_COLOR)
        draw.disc(frame, pad_row, pad_col, 2.0, PAD_CORE_COLOR)
        row, col = to_pixels(*self.position)
        thrust_x, thrust_y = self.last_thrust
        if thrust_x or thrust_y:  # the flame points away from the thrust, its length grows with it
            draw.disc(frame, row + thrust_y * 9.0, col - thrust_x * 9.0, 2.0 + 2.0 * math.hypot(thrust_x, thrust_y),
                      FLAME_COLOR)
        draw.disc(frame, row, col, 5.0, CRAFT_COLOR)
        return frame


def _clip_unit(value: Any) -> float:
    """Clip one action component to [-1, 1]; NaN becomes 0 (no thrust) rather than poisoning the state."""
    value = float(value)
    if value != value:
        return 0.0
    return min(max(value, -1.0), 1.0)


def _wall(coordinate: float, speed: float) -> tuple[float, float]:
    """Inelastic wall at +-ARENA: put the craft back on the edge and stop its motion into the wall."""
    if coordinate > ARENA:
        return ARENA, min(speed, 0.0)
    if coordinate < -ARENA:
        return -ARENA, max(speed, 0.0)
    return coordinate, speed
