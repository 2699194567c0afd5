"""lab-reinforce: REINFORCE with a learned baseline, registered with lab through the ``lab`` entry point.

Registration is cheap (no torch here): the factory module ``lab_reinforce.agent`` is imported when a run starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lab.api import Plugin, Preset, hookimpl, option, positive_sizes

LAB_API_VERSION = 1  # the lab plugin API this package is written for


@dataclass
class ReinforceConfig:
    """REINFORCE (Williams, 1992) with reward-to-go, a learned state-value baseline and an entropy bonus."""

    lr: float = option(3e-3, "Adam learning rate of the policy and the baseline.", min=0.0)
    gamma: float = option(0.99, "Discount factor.", min=0.0, max=1.0)
    hidden: list[int] = option([64, 64], "Hidden layer sizes of the policy and baseline networks.",
                               check=positive_sizes)
    episodes_per_update: int = option(8, "Episodes collected per gradient step.", min=1)
    ent_coef: float = option(0.0, "Entropy bonus coefficient.", min=0.0)
    baseline: bool = option(True, "Subtract a learned state value from the returns (lower variance).")
    gif: bool = option(True, "Log a GIF of the best policy playing one episode.")


# Tuned here on CartPole-v1 (see the package README); other envs keep the defaults.
PRESETS = {"CartPole-v1": {"steps": 200_000, "eval_every": 10_000, "lr": 3e-3, "episodes_per_update": 8,
                           "threads": 1}}


def preset(env_id: str) -> Preset | None:
    values = PRESETS.get(env_id)
    return Preset(f"reinforce:{env_id}", values, "lab-reinforce README") if values else None


def check_env(env_id: str) -> str | None:
    import gymnasium

    env = gymnasium.make(env_id)
    try:
        if not isinstance(env.observation_space, gymnasium.spaces.Box) or len(env.observation_space.shape) != 1:
            return f"reinforce needs flat Box observations and {env_id} has {env.observation_space}"
        if not isinstance(env.action_space, gymnasium.spaces.Discrete | gymnasium.spaces.Box):
            return f"reinforce needs Discrete or Box actions and {env_id} has {env.action_space}"
        return None
    finally:
        env.close()


@hookimpl
def register_plugins(register: Callable[[Plugin], None]) -> None:
    register(Plugin(name="reinforce", kind="agent", config=ReinforceConfig, factory="lab_reinforce.agent:build",
                    description="REINFORCE with a learned baseline (lab-reinforce, an outside package)",
                    presets=preset, check_target=check_env, score="mean_return"))
