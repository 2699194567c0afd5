"""lab's environments: our own games (``lab/Snake-v0``, ``lab/Maze-v0``, ``lab/Dock-v0``), short aliases for
gymnasium's classic-control and Box2D tasks, and Atari games through ale-py's bundled ROMs.

Everything is declared through the ``register_envs`` hook, exactly as a third-party env package would do it.
Registration imports nothing heavy: each ``EnvSpec.setup`` (our games' gymnasium registration, ``import ale_py``)
runs only when a command needs that env.
"""

from __future__ import annotations

from collections.abc import Callable

from lab.api import EnvSpec, hookimpl
from lab_envs.games import GAMES
from lab_envs.novel import MASKED_TASKS, masked_id

GAMES_SETUP = "lab_envs.games:register_with_gymnasium"
ATARI_SETUP = "lab_envs.atari:register"
NOVEL_SETUP = "lab_envs.novel:register"

# alias -> (gymnasium id, family)
GYMNASIUM_ALIASES: dict[str, tuple[str, str]] = {
    "CartPole": ("CartPole-v1", "classic-control"),
    "Pendulum": ("Pendulum-v1", "classic-control"),
    "Acrobot": ("Acrobot-v1", "classic-control"),
    "MountainCar": ("MountainCar-v0", "classic-control"),
    "MountainCarContinuous": ("MountainCarContinuous-v0", "classic-control"),
    "LunarLander": ("LunarLander-v3", "box2d"),
    "LunarLanderContinuous": ("LunarLanderContinuous-v3", "box2d"),
    "BipedalWalker": ("BipedalWalker-v3", "box2d"),
    "CarRacing": ("CarRacing-v3", "box2d"),
}

GYMNASIUM_FAMILY = {env_id: family for env_id, family in GYMNASIUM_ALIASES.values()}

# The Atari games of the DQN/PPO papers' usual benchmark subset; any other ALE/*-v5 id works too.
ATARI_GAMES = ("Pong", "Breakout", "SpaceInvaders", "Seaquest", "Qbert", "BeamRider", "Enduro", "Asteroids",
               "MsPacman", "Freeway")


@hookimpl
def register_envs(register: Callable[[EnvSpec], None]) -> None:
    for game in GAMES:
        register(EnvSpec(id=game.id, aliases=(game.alias,), description=game.description, family="lab",
                         setup=GAMES_SETUP))
    for alias, (env_id, family) in GYMNASIUM_ALIASES.items():
        register(EnvSpec(id=env_id, aliases=(alias,), description=f"gymnasium {env_id}", family=family))
    for env_id in MASKED_TASKS:
        family = GYMNASIUM_FAMILY.get(env_id, "classic-control")
        register(EnvSpec(id=masked_id(env_id), description=f"{env_id} without its velocities (the Zoo's "
                         "MaskVelocityWrapper)", family=family, setup=NOVEL_SETUP))
    for name in ATARI_GAMES:
        register(EnvSpec(id=f"ALE/{name}-v5", aliases=(name,), description=f"Atari 2600 {name} (ale-py ROM)",
                         family="atari", setup=ATARI_SETUP))
