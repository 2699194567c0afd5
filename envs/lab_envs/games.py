"""lab's own games: their gymnasium ids, aliases, thresholds and time limits, in one table."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Game:
    id: str
    alias: str
    entry_point: str
    reward_threshold: float
    max_episode_steps: int
    description: str


GAMES: tuple[Game, ...] = (
    Game("lab/Snake-v0", "Snake", "lab_envs.snake:SnakeEnv", reward_threshold=15.0, max_episode_steps=1000,
         description="Classic snake on a 10x10 board, relative turns, +1 per food, -1 on death; 15 is ~16 foods"),
    Game("lab/Maze-v0", "Maze", "lab_envs.maze:MazeEnv", reward_threshold=0.4, max_episode_steps=100,
         description="Reach the goal of a new random 11x11 gridworld each episode via a 5x5 view; 0.4 solves ~3 in 4"),
    Game("lab/Dock-v0", "Dock", "lab_envs.dock:DockEnv", reward_threshold=13.0, max_episode_steps=200,
         description="Thrust a craft against gravity onto a pad and stop on it; 13 is docking ~85% of the time"),
)


def register_with_gymnasium() -> None:
    """Make ``gymnasium.make("lab/Snake-v0")`` etc. work (idempotent)."""
    import gymnasium

    for game in GAMES:
        if game.id not in gymnasium.registry:
            gymnasium.register(game.id, entry_point=game.entry_point, max_episode_steps=game.max_episode_steps,
                               reward_threshold=game.reward_threshold)
