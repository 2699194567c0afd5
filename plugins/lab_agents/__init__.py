"""Built-in RL agents: stable-baselines3's DQN, PPO, A2C, SAC, TD3 and DDPG (envs come from ``lab_envs``).

Registration only declares names, configs and presets; SB3 and torch are imported by ``lab_agents.sb3``
when a run starts.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, partial

from lab.api import Plugin, hookimpl
from lab_agents import configs
from lab_agents.presets import preset_for

# name -> (config class, action spaces it handles, description)
ALGORITHMS: dict[str, tuple[type, tuple[str, ...], str]] = {
    "dqn": (configs.DQNConfig, ("Discrete",), "Deep Q-Network (stable-baselines3), discrete actions"),
    "ppo": (configs.PPOConfig, ("Discrete", "Box", "MultiDiscrete", "MultiBinary"),
            "Proximal Policy Optimization (stable-baselines3), any action space"),
    "a2c": (configs.A2CConfig, ("Discrete", "Box", "MultiDiscrete", "MultiBinary"),
            "Advantage Actor-Critic (stable-baselines3), any action space"),
    "sac": (configs.SACConfig, ("Box",), "Soft Actor-Critic (stable-baselines3), continuous actions"),
    "td3": (configs.TD3Config, ("Box",), "Twin Delayed DDPG (stable-baselines3), continuous actions"),
    "ddpg": (configs.DDPGConfig, ("Box",), "Deep Deterministic Policy Gradient (stable-baselines3), "
                                           "continuous actions"),
}

@cache
def action_space_of(env_id: str) -> tuple[str, str]:
    """(class name, description) of an env's action space; builds the env once per process."""
    import gymnasium

    env = gymnasium.make(env_id)
    try:
        return type(env.action_space).__name__, str(env.action_space)
    finally:
        env.close()


def check_action_space(algo: str, spaces: tuple[str, ...], env_id: str) -> str | None:
    kind, description = action_space_of(env_id)
    if kind in spaces:
        return None
    return f"{algo} needs a {' or '.join(spaces)} action space and {env_id} has {description}"


@hookimpl
def register_plugins(register: Callable[[Plugin], None]) -> None:
    for name, (config, spaces, description) in ALGORITHMS.items():
        register(Plugin(
            name=name,
            kind="agent",
            config=config,
            factory="lab_agents.sb3:build",
            description=description,
            presets=partial(preset_for, name),
            check_target=partial(check_action_space, name, spaces),
            score="mean_return",
        ))

