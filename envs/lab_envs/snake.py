"""Snake: the classic game on a square grid, with compact features for an MLP policy."""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from lab_envs import draw

Cell = tuple[int, int]  # (row, column); row 0 is the top

# Headings, clockwise, as (row, column) steps: 0 up, 1 right, 2 down, 3 left.
HEADINGS: tuple[Cell, ...] = ((-1, 0), (0, 1), (1, 0), (0, -1))
STRAIGHT, LEFT, RIGHT = 0, 1, 2
# Heading change of each action: turning left is a counter-clockwise quarter turn.
TURNS = (0, 3, 1)

FRAME_SIDE = 240  # target frame side in pixels; the actual side is size * (FRAME_SIDE // size)
BACKGROUND, GRID, BODY, HEAD, FOOD = (24, 24, 32), (36, 36, 48), (70, 170, 90), (140, 230, 120), (220, 60, 60)


class SnakeEnv(gymnasium.Env):
    """Classic Snake on a ``size`` x ``size`` grid, steered with relative actions.

    Rules: the snake starts with length 3 in the middle of the board, heading in a random direction, and moves one
    cell per step. Moving onto the food grows it by one cell and places new food on a uniformly random free cell.
    Moving off the board or into its own body kills it. The tail moves away in the same step, so moving into the
    cell the tail is leaving is safe.

    Actions, ``Discrete(3)``, relative to the heading: 0 go straight, 1 turn left, 2 turn right.

    Observation, ``Box(-1, 1, (18,), float32)``; "ahead/left/right" are relative to the heading:

    - ``[0:3]``   danger ahead, left, right: 1 if the neighbouring cell is a wall or body (the tail excluded);
    - ``[3:7]``   heading one-hot (up, right, down, left);
    - ``[7:9]``   food offset in the snake's frame, forward and rightward, divided by ``size - 1`` (in [-1, 1]);
    - ``[9:13]``  food is ahead, behind, left, right (0/1 each);
    - ``[13:16]`` free run ahead, left, right: free cells before an obstacle, divided by ``size - 1``;
    - ``[16]``    length / ``size**2``;
    - ``[17]``    steps since the last food / ``starve_steps`` (hunger).

    Rewards: +1 for eating, -1 for dying, 0 otherwise (no shaping), so an episode's return is the food eaten,
    minus 1 if it ended in death.

    Termination: death, or the snake fills the whole board (the winning meal still gives +1).
    Truncation: ``starve_steps`` steps without eating (stops endless loops); ``gymnasium.make`` adds a TimeLimit.

    State, public for tests and tools: ``body`` (deque of cells, head first), ``direction`` (heading index),
    ``food`` (cell, or None once the board is full), ``steps_since_food``; ``observation()`` reads them.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode: str | None = None, size: int = 10, starve_steps: int | None = None) -> None:
        """``size``: board side in cells (>= 5). ``starve_steps``: steps without food before truncation
        (>= 1; default ``size**2``, enough to reach any cell from anywhere)."""
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 5:
            raise ValueError(f"size must be an int >= 5, got {size!r}")
        if starve_steps is None:
            starve_steps = size * size
        if isinstance(starve_steps, bool) or not isinstance(starve_steps, int) or starve_steps < 1:
            raise ValueError(f"starve_steps must be an int >= 1 or None, got {starve_steps!r}")
        self.render_mode = render_mode
        self.size = size
        self.starve_steps = starve_steps
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(18,), dtype=np.float32)
        self.action_space = spaces.Discrete(3)
        self.body: deque[Cell] = deque()
        self.direction = 0
        self.food: Cell | None = None
        self.steps_since_food = 0

    # -- gymnasium API ---------------------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.direction = int(self.np_random.integers(4))
        center = self.size // 2
        d_row, d_col = HEADINGS[self.direction]
        # Head in the middle, the two other cells trailing behind it.
        self.body = deque((center - i * d_row, center - i * d_col) for i in range(3))
        self.steps_since_food = 0
        self.food = self._place_food()
        return self.observation(), {"length": len(self.body)}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.direction = direction = (self.direction + TURNS[action]) % 4
        body = self.body
        row, col = body[0]
        d_row, d_col = HEADINGS[direction]
        head = (row + d_row, col + d_col)
        size = self.size
        eating = head == self.food
        # The tail leaves before the head arrives, so chasing the tail is safe (unless eating, which keeps it).
        tail = None if eating else body.pop()
        if not (0 <= head[0] < size and 0 <= head[1] < size) or head in body:
            if tail is not None:
                body.append(tail)  # keep the dead snake whole for the last observation and the picture
            return self.observation(), -1.0, True, False, {"length": len(body)}
        body.appendleft(head)
        if eating:
            self.steps_since_food = 0
            self.food = self._place_food()
            return self.observation(), 1.0, self.food is None, False, {"length": len(body)}
        self.steps_since_food += 1
        return self.observation(), 0.0, False, self.steps_since_food >= self.starve_steps, {"length": len(body)}

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        cell = max(FRAME_SIDE // self.size, 4)
        frame = draw.canvas(self.size * cell, self.size * cell, BACKGROUND)
        for i in range(1, self.size):  # faint grid lines help to count cells
            draw.rect(frame, i * cell, 0, 1, self.size * cell, GRID)
            draw.rect(frame, 0, i * cell, self.size * cell, 1, GRID)
        for i, (row, col) in enumerate(self.body):
            if 0 <= row < self.size and 0 <= col < self.size:
                draw.rect(frame, row * cell + 1, col * cell + 1, cell - 2, cell - 2, HEAD if i == 0 else BODY)
        if self.food is not None:
            row, col = self.food
            draw.disc(frame, (row + 0.5) * cell, (col + 0.5) * cell, cell * 0.38, FOOD)
        return frame

    # -- state helpers ---------------------------------------------------------------------------------------------

    def observation(self) -> np.ndarray:
        """The observation of the current state (see the class docstring for the layout)."""
        body = self.body
        size = self.size
        row, col = body[0]
        direction = self.direction
        # Obstacles for the next move: the tail cell is about to be vacated.
        blocked = set(body)
        blocked.discard(body[-1])
        runs = []
        for turn in TURNS:
            d_row, d_col = HEADINGS[(direction + turn) % 4]
            r, c, run = row + d_row, col + d_col, 0
            while 0 <= r < size and 0 <= c < size and (r, c) not in blocked:
                run += 1
                r += d_row
                c += d_col
            runs.append(run)
        if self.food is None:
            forward = rightward = 0
        else:
            f_row, f_col = self.food[0] - row, self.food[1] - col
            d_row, d_col = HEADINGS[direction]
            forward = f_row * d_row + f_col * d_col
            rightward = f_row * d_col - f_col * d_row  # the right of heading (dr, dc) is (dc, -dr)
        scale = 1.0 / (size - 1)
        return np.array(
            [runs[0] == 0, runs[1] == 0, runs[2] == 0,
             direction == 0, direction == 1, direction == 2, direction == 3,
             forward * scale, rightward * scale,
             forward > 0, forward < 0, rightward < 0, rightward > 0,
             runs[0] * scale, runs[1] * scale, runs[2] * scale,
             len(body) / (size * size), min(self.steps_since_food / self.starve_steps, 1.0)],
            dtype=np.float32,
        )

    def _place_food(self) -> Cell | None:
        """A uniformly random free cell, or None when the snake fills the board."""
        size = self.size
        occupied = set(self.body)
        free_count = size * size - len(occupied)
        if free_count <= 0:
            return None
        if free_count * 2 >= size * size:
            # Mostly free board: rejection sampling is uniform over free cells and cheaper than listing them.
            while True:
                index = int(self.np_random.integers(size * size))
                cell = (index // size, index % size)
                if cell not in occupied:
                    return cell
        free = [(r, c) for r in range(size) for c in range(size) if (r, c) not in occupied]
        return free[int(self.np_random.integers(len(free)))]
