"""Built-in RL agents: the RL Baselines3 Zoo's thirteen algorithms, stable-baselines3's DQN, PPO, A2C, SAC, TD3
and DDPG and sb3-contrib's ARS, QR-DQN, TQC, TRPO, CrossQ and recurrent PPO (envs come from ``lab_envs``), with
the Zoo's own hyperparameter files as presets (``lab_agents.zoo``).

Registration only declares names, configs and presets; SB3 and torch are imported by ``lab_agents.sb3``
when a run starts.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from lab.api import EnvSpec, Plugin, hookimpl
from lab_agents import configs
from lab_agents.presets import preset_for

# name -> (config class, action spaces it handles, description)
ANY_ACTIONS = ("Discrete", "Box", "MultiDiscrete", "MultiBinary")
ALGORITHMS: dict[str, tuple[type, tuple[str, ...], str]] = {
    "dqn": (configs.DQNConfig, ("Discrete",), "Deep Q-Network (stable-baselines3), discrete actions"),
    "ppo": (configs.PPOConfig, ANY_ACTIONS, "Proximal Policy Optimization (stable-baselines3), any action space"),
    "a2c": (configs.A2CConfig, ANY_ACTIONS, "Advantage Actor-Critic (stable-baselines3), any action space"),
    "sac": (configs.SACConfig, ("Box",), "Soft Actor-Critic (stable-baselines3), continuous actions"),
    "td3": (configs.TD3Config, ("Box",), "Twin Delayed DDPG (stable-baselines3), continuous actions"),
    "ddpg": (configs.DDPGConfig, ("Box",), "Deep Deterministic Policy Gradient (stable-baselines3), "
                                           "continuous actions"),
    "ars": (configs.ARSConfig, ("Discrete", "Box"), "Augmented Random Search (sb3-contrib), discrete or "
                                                     "continuous actions"),
    "qrdqn": (configs.QRDQNConfig, ("Discrete",), "Quantile Regression DQN (sb3-contrib), discrete actions"),
    "tqc": (configs.TQCConfig, ("Box",), "Truncated Quantile Critics (sb3-contrib), continuous actions"),
    "trpo": (configs.TRPOConfig, ANY_ACTIONS, "Trust Region Policy Optimization (sb3-contrib), any action space"),
    "crossq": (configs.CrossQConfig, ("Box",), "CrossQ (sb3-contrib), continuous actions"),
    "ppo_lstm": (configs.RecurrentPPOConfig, ANY_ACTIONS, "Recurrent PPO with an LSTM policy (sb3-contrib), any "
                                                           "action space"),
}


def check_spaces(algo: str, action_kinds: tuple[str, ...], env_id: str) -> str | None:
    """Why ``algo`` cannot train on ``env_id`` (its observation or action space), None if it can: what `lab envs`
    lists as the agents that fit, and what `lab run` refuses before a run exists."""
    from lab_agents import spaces  # gymnasium and numpy: imported when a check runs, not when lab lists plugins

    return spaces.space_problem(algo, action_kinds, env_id)


def check_config(algo: str, action_kinds: tuple[str, ...], config: Any, spec: EnvSpec | None) -> str | None:
    """Configs SB3 would refuse with an assertion, or train on NaN with; envs the config cannot build."""
    from lab_agents import spaces

    return spaces.config_problem(algo, action_kinds, config, spec.id) if isinstance(spec, EnvSpec) else None


def check_resources(config: Any, spec: EnvSpec | None) -> str | None:
    """A buffer that cannot fit in this machine's memory."""
    from lab_agents import spaces

    return spaces.memory_problem(config, spec.id) if isinstance(spec, EnvSpec) else None


@hookimpl
def register_plugins(register: Callable[[Plugin], None]) -> None:
    for name, (config, action_kinds, description) in ALGORITHMS.items():
        register(Plugin(
            name=name,
            kind="agent",
            config=config,
            factory="lab_agents.sb3:build",
            description=description,
            presets=partial(preset_for, name, config),
            check_target=partial(check_spaces, name, action_kinds),
            check_config=partial(check_config, name, action_kinds),
            check_resources=check_resources,
            score="mean_return",
        ))

