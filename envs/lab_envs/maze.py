"""Maze: a gridworld with a new random layout at every reset, to test generalisation to unseen layouts."""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from lab_envs import draw

Cell = tuple[int, int]  # (row, column); row 0 is the top

# Moves of the four actions, as (row, column) steps: 0 up, 1 right, 2 down, 3 left.
MOVES: tuple[Cell, ...] = ((-1, 0), (0, 1), (1, 0), (0, -1))
STEP_PENALTY = -0.01
GOAL_REWARD = 1.0
VISIT_CAP = 10  # visit counts in the observation saturate here

FRAME_SIDE = 240  # target frame side in pixels; the actual side is size * (FRAME_SIDE // size)
FLOOR, WALL, AGENT, GOAL, TRAIL = (235, 235, 225), (50, 55, 70), (40, 110, 220), (60, 180, 80), (160, 190, 235)


def bfs_distances(walls: np.ndarray, source: Cell) -> dict[Cell, int]:
    """Shortest-path step counts from ``source`` to every cell reachable from it (4-neighbour moves, no walls)."""
    height, width = walls.shape
    blocked = walls.tolist()
    distances = {source: 0}
    queue = deque([source])
    while queue:
        row, col = queue.popleft()
        distance = distances[(row, col)] + 1
        for d_row, d_col in MOVES:
            r, c = row + d_row, col + d_col
            if 0 <= r < height and 0 <= c < width and not blocked[r][c] and (r, c) not in distances:
                distances[(r, c)] = distance
                queue.append((r, c))
    return distances


class MazeEnv(gymnasium.Env):
    """A ``size`` x ``size`` gridworld whose walls, start and goal are drawn anew from the seed at every reset.

    Layout: short straight wall segments (2 to 4 cells, horizontal or vertical) are scattered until about
    ``wall_density`` of the cells are walls; the board's edge is a wall too. The start is a random free cell and the
    goal a random cell at least ``size - 1`` moves away from it along a shortest path; a breadth-first search checks
    that the path exists (layouts without one are drawn again), so every layout is solvable.

    Actions, ``Discrete(4)``: 0 up, 1 right, 2 down, 3 left. Moving into a wall or off the board leaves the agent
    in place (the step still costs the penalty).

    Observation, ``Box(-1, 1, (2 (2r+1)**2 + 4,), float32)`` with ``r = view_radius`` (54 values for r = 2), built
    from a (2r+1) x (2r+1) window centred on the agent, read row by row with the centre cell left out (``k`` cells):

    - ``[0:k]``     walls in the window: 1 for a wall or off the board, 0 for floor;
    - ``[k:2k]``    the agent's trail in the window: how often it stood on each cell this episode, divided by 10
      and capped at 1 (bumps count as visits);
    - ``[2k:2k+2]`` the goal's offset from the agent, (rows, columns) divided by ``size - 1`` (in [-1, 1]);
    - ``[2k+2:]``   the goal is up, right, down, left of the agent (0/1 each; two can be 1, none on the goal).

    The window and the goal offset let an MLP head for the goal and steer around local obstacles on any layout; it
    sees nothing further away. The trail is its memory: a memoryless (deterministic) policy would otherwise loop
    for ever in a pocket, while with the trail its input changes at every lap, so it can learn to leave.

    Rewards: +1 on reaching the goal, -0.01 on every other step. An episode that reaches the goal after ``n`` steps
    returns ``1 - 0.01 (n - 1)``; one that times out after 100 steps returns -1.

    Termination: reaching the goal. Truncation: none here; ``gymnasium.make`` adds a TimeLimit (100 steps).

    State, public for tests and tools: ``walls`` (read-only (size, size) bool array; assign a new array to change
    it), ``agent`` and ``goal`` (cells), ``visits`` (a copy of the visit counts per cell; assign a dict to change
    them); ``observation()`` reads them.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode: str | None = None, size: int = 11, wall_density: float = 0.2,
                 view_radius: int = 2) -> None:
        """``size``: board side in cells (5 to 64). ``wall_density``: target fraction of wall cells (0 to 0.4).
        ``view_radius``: how far the agent sees walls around it (1 to 5)."""
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        if isinstance(size, bool) or not isinstance(size, int) or not 5 <= size <= 64:
            raise ValueError(f"size must be an int in [5, 64], got {size!r}")
        if isinstance(wall_density, bool) or not isinstance(wall_density, int | float) or not 0 <= wall_density <= 0.4:
            raise ValueError(f"wall_density must be a number in [0, 0.4], got {wall_density!r}")
        if isinstance(view_radius, bool) or not isinstance(view_radius, int) or not 1 <= view_radius <= 5:
            raise ValueError(f"view_radius must be an int in [1, 5], got {view_radius!r}")
        self.render_mode = render_mode
        self.size = size
        self.wall_density = float(wall_density)
        self.view_radius = view_radius
        self.min_goal_distance = size - 1
        side = 2 * view_radius + 1
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(2 * side * side + 4,), dtype=np.float32)
        self.action_space = spaces.Discrete(4)
        # Window offsets into the padded wall list, row-major, centre excluded.
        padded_width = size + 2 * view_radius
        self._window = [dr * padded_width + dc for dr in range(-view_radius, view_radius + 1)
                        for dc in range(-view_radius, view_radius + 1) if dr or dc]
        self.walls = np.zeros((size, size), dtype=bool)
        self.agent: Cell = (0, 0)
        self.goal: Cell = (size - 1, size - 1)
        self.visits: dict[Cell, int] = {self.agent: 1}

    # -- state --------------------------------------------------------------------------------------------------

    @property
    def walls(self) -> np.ndarray:
        return self._walls

    @walls.setter
    def walls(self, walls: np.ndarray) -> None:
        walls = np.array(walls, dtype=bool)  # a private copy, so the caches below cannot go stale
        if walls.shape != (self.size, self.size):
            raise ValueError(f"walls must have shape {(self.size, self.size)}, got {walls.shape}")
        walls.flags.writeable = False
        self._walls = walls
        self._blocked = walls.tolist()  # nested lists: indexing them is much faster than numpy per step
        # The walls in a flat float list padded with `view_radius` wall cells, so windows never leave it.
        padded = np.pad(walls, self.view_radius, constant_values=True)
        self._padded = padded.astype(float).ravel().tolist()
        self._padded_width = padded.shape[1]

    @property
    def visits(self) -> dict[Cell, int]:
        return dict(self._visits)

    @visits.setter
    def visits(self, visits: dict[Cell, int]) -> None:
        self._visits = dict(visits)
        # The trail in the same padded flat layout as the walls, so a window reads both with the same offsets.
        self._trail = [0.0] * len(self._padded)
        for cell, count in self._visits.items():
            self._trail[self._padded_index(cell)] = min(count, VISIT_CAP) / VISIT_CAP

    def _padded_index(self, cell: Cell) -> int:
        """Where ``cell`` sits in the padded flat lists (walls, trail)."""
        return (cell[0] + self.view_radius) * self._padded_width + cell[1] + self.view_radius

    def observation(self) -> np.ndarray:
        """The observation of the current state (see the class docstring for the layout)."""
        row, col = self.agent
        centre = self._padded_index(self.agent)
        padded = self._padded
        features = [padded[centre + offset] for offset in self._window]
        trail = self._trail
        features += [trail[centre + offset] for offset in self._window]
        d_row, d_col = self.goal[0] - row, self.goal[1] - col
        scale = 1.0 / (self.size - 1)
        # The offset's signs too: "which way is the goal" is then linear in the input, the offset says how far.
        features += [d_row * scale, d_col * scale, d_row < 0, d_col > 0, d_row > 0, d_col < 0]
        return np.array(features, dtype=np.float32)

    # -- gymnasium API ---------------------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._generate()
        return self.observation(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        row, col = self.agent
        d_row, d_col = MOVES[action]
        r, c = row + d_row, col + d_col
        size = self.size
        if 0 <= r < size and 0 <= c < size and not self._blocked[r][c]:
            self.agent = (r, c)
        agent = self.agent
        # Every step counts a visit, bumps included, so a memoryless policy that loops sees its trail change.
        count = self._visits[agent] = self._visits.get(agent, 0) + 1
        self._trail[self._padded_index(agent)] = min(count, VISIT_CAP) / VISIT_CAP
        if self.agent == self.goal:
            return self.observation(), GOAL_REWARD, True, False, {}
        return self.observation(), STEP_PENALTY, False, False, {}

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        cell = max(FRAME_SIDE // self.size, 4)
        frame = draw.canvas(self.size * cell, self.size * cell, FLOOR)
        for (row, col), count in self._visits.items():  # the trail, darker where the agent has been more often
            shade = min(count, VISIT_CAP) / VISIT_CAP
            color = tuple(int(f + (t - f) * (0.3 + 0.7 * shade)) for f, t in zip(FLOOR, TRAIL, strict=True))
            draw.rect(frame, row * cell, col * cell, cell, cell, color)
        for row, col in zip(*np.nonzero(self._walls), strict=True):
            draw.rect(frame, int(row) * cell, int(col) * cell, cell, cell, WALL)
        draw.rect(frame, self.goal[0] * cell + 2, self.goal[1] * cell + 2, cell - 4, cell - 4, GOAL)
        draw.disc(frame, (self.agent[0] + 0.5) * cell, (self.agent[1] + 0.5) * cell, cell * 0.38, AGENT)
        return frame

    # -- layout generation ---------------------------------------------------------------------------------------

    def _generate(self) -> None:
        """Draw walls, start and goal until the goal is reachable and far enough away."""
        while True:
            walls = self._random_walls()
            free = np.flatnonzero(~walls)
            start_index = int(free[self.np_random.integers(len(free))])
            start = (start_index // self.size, start_index % self.size)
            distances = bfs_distances(walls, start)
            far = [cell for cell, distance in distances.items() if distance >= self.min_goal_distance]
            if far:
                break
        self.walls = walls
        self.agent = start
        self.visits = {start: 1}
        self.goal = far[int(self.np_random.integers(len(far)))]

    def _random_walls(self) -> np.ndarray:
        """Straight segments of 2-4 cells at random places until the wall density is reached."""
        size = self.size
        walls = np.zeros((size, size), dtype=bool)
        target = round(self.wall_density * size * size)
        while walls.sum() < target:
            # One call draws a batch of segments (cheaper than one call per number); extras are simply unused.
            batch = self.np_random.integers(0, [2, 3, size, size], size=(16, 4))
            for vertical, extra, row, col in batch.tolist():
                length = 2 + extra
                if vertical:
                    walls[row:row + length, col] = True
                else:
                    walls[row, col:col + length] = True
                if walls.sum() >= target:
                    break
        return walls
