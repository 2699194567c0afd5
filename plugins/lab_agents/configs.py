"""Config dataclasses of the SB3 agents: one field per key, each with its one-line doc.

Defaults are stable-baselines3's own; presets (``presets.py``) override them per environment. Names follow
SB3 except ``lr`` (``learning_rate``), the schedules, and the policy keys ``net_arch``/``activation``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from lab.api import option

Activation = Literal["tanh", "relu", "elu", "leaky_relu", "gelu", "silu"]
Schedule = Literal["constant", "linear"]


def _fraction(value: float) -> str | None:
    return None if 0.0 <= value <= 1.0 else "must be between 0 and 1"


def _positive_list(value: list[int]) -> str | None:
    # [] is valid: the heads sit directly on the features (SB3's choice after the Atari CNN).
    return None if all(v > 0 for v in value) else "must be a list of positive sizes, e.g. [64,64] ([] = none)"


def _ent_coef(value: str) -> str | None:
    """SB3 reads ``auto_X`` as a learned coefficient starting at X (asserting X > 0), anything else as a number."""
    valid = "valid: auto, auto_<initial value > 0>, or a number >= 0"
    if value == "auto":
        return None
    try:
        number = float(value.removeprefix("auto_"))
    except ValueError:
        return valid
    initial = value.startswith("auto_")
    return None if math.isfinite(number) and (number > 0 if initial else number >= 0) else valid


def _positive_fraction(value: float) -> str | None:
    # SB3's linear schedule divides by it: 0 raises ZeroDivisionError at the first step.
    return None if 0.0 < value <= 1.0 else "must be in (0, 1]"


@dataclass
class AgentConfig:
    """Keys every SB3 agent has."""

    lr: float = option(3e-4, "Learning rate (the initial one when lr_schedule=linear).", min=0.0)
    lr_schedule: Schedule = option("constant", "constant, or linear decay of lr to 0 over the budget.")
    gamma: float = option(0.99, "Discount factor.", check=_fraction)
    net_arch: list[int] = option([64, 64], "Hidden layer sizes of the policy and value networks.",
                                 check=_positive_list)
    activation: Activation = option("tanh", "Activation of the hidden layers.")
    n_envs: int = option(1, "Parallel training envs (vectorised in one process).", min=1)
    normalize: bool = option(False, "Normalise observations and rewards with running statistics.")
    gif: bool = option(True, "Log a GIF of the best model playing one episode.")
    backbone: str | None = option(None, "A backbone plugin (mlp, transformer, ...) as the features extractor; "
                                  "net_arch layers follow it. null = SB3's default.", plugin_kind="backbone")


@dataclass
class OnPolicyConfig(AgentConfig):
    """Keys shared by PPO and A2C."""

    n_steps: int = option(2048, "Steps per env per rollout.", min=1)
    gae_lambda: float = option(0.95, "GAE lambda.", check=_fraction)
    ent_coef: float = option(0.0, "Entropy bonus coefficient.", min=0.0)
    vf_coef: float = option(0.5, "Value loss coefficient.", min=0.0)
    max_grad_norm: float = option(0.5, "Gradient clipping norm.", min=0.0)
    normalize_advantage: bool = option(True, "Normalise advantages per batch.")
    use_sde: bool = option(False, "State-dependent exploration (continuous actions only).")
    sde_sample_freq: int = option(-1, "Resample the SDE noise every N steps; -1 only at rollout start.",
                                  min=-1)
    log_std_init: float = option(0.0, "Initial log std of Gaussian policies (continuous actions).")
    ortho_init: bool = option(True, "Orthogonal initialisation of the networks.")


@dataclass
class PPOConfig(OnPolicyConfig):
    """Proximal Policy Optimization (SB3 defaults)."""

    batch_size: int = option(64, "Minibatch size.", min=1)
    n_epochs: int = option(10, "Epochs over each rollout.", min=1)
    clip_range: float = option(0.2, "Clipping parameter (the initial one when clip_schedule=linear).", min=0.0)
    clip_schedule: Schedule = option("constant", "constant, or linear decay of clip_range to 0.")
    target_kl: float | None = option(None, "Stop an update early past this KL divergence; null = never.")


@dataclass
class A2CConfig(OnPolicyConfig):
    """Advantage Actor-Critic (SB3 defaults)."""

    lr: float = option(7e-4, "Learning rate (the initial one when lr_schedule=linear).", min=0.0)
    n_steps: int = option(5, "Steps per env per update.", min=1)
    gae_lambda: float = option(1.0, "GAE lambda (1.0 = classic advantage).", check=_fraction)
    normalize_advantage: bool = option(False, "Normalise advantages per batch.")
    use_rms_prop: bool = option(True, "RMSprop optimizer (else Adam).")


@dataclass
class OffPolicyConfig(AgentConfig):
    """Keys shared by DQN, SAC, TD3 and DDPG."""

    activation: Activation = option("relu", "Activation of the hidden layers.")
    buffer_size: int = option(1_000_000, "Replay buffer size.", min=1)
    learning_starts: int = option(100, "Steps of random actions before learning starts.", min=0)
    batch_size: int = option(256, "Minibatch size.", min=1)
    tau: float = option(0.005, "Soft update coefficient of the target networks.", check=_fraction)
    train_freq: int = option(1, "Update the model every N steps.", min=1)
    gradient_steps: int = option(1, "Gradient steps per update; -1 = as many as env steps.", min=-1)


@dataclass
class DQNConfig(OffPolicyConfig):
    """Deep Q-Network (SB3 defaults)."""

    lr: float = option(1e-4, "Learning rate (the initial one when lr_schedule=linear).", min=0.0)
    learning_starts: int = option(100, "Steps of random actions before learning starts.", min=0)
    batch_size: int = option(32, "Minibatch size.", min=1)
    tau: float = option(1.0, "Target network update coefficient (1.0 = hard update).", check=_fraction)
    train_freq: int = option(4, "Update the model every N steps.", min=1)
    target_update_interval: int = option(10_000, "Env steps between target network updates.", min=1)
    exploration_fraction: float = option(0.1, "Fraction of the budget over which epsilon decays.",
                                         check=_positive_fraction)
    exploration_initial_eps: float = option(1.0, "Initial epsilon of epsilon-greedy.", check=_fraction)
    exploration_final_eps: float = option(0.05, "Final epsilon of epsilon-greedy.", check=_fraction)
    max_grad_norm: float = option(10.0, "Gradient clipping norm.", min=0.0)


@dataclass
class SACConfig(OffPolicyConfig):
    """Soft Actor-Critic (SB3 defaults)."""

    net_arch: list[int] = option([256, 256], "Hidden layer sizes of the actor and critics.",
                                 check=_positive_list)
    ent_coef: str = option("auto", "Entropy coefficient: auto (learned), auto_<initial value>, or a number.",
                           check=_ent_coef)
    target_update_interval: int = option(1, "Gradient steps between target network updates.", min=1)
    use_sde: bool = option(False, "State-dependent exploration instead of Gaussian noise.")
    sde_sample_freq: int = option(-1, "Resample the SDE noise every N steps; -1 only at rollout start.",
                                  min=-1)
    log_std_init: float = option(-3.0, "Initial log std when use_sde=true.")


@dataclass
class TD3Config(OffPolicyConfig):
    """Twin Delayed DDPG (SB3 defaults)."""

    lr: float = option(1e-3, "Learning rate (the initial one when lr_schedule=linear).", min=0.0)
    net_arch: list[int] = option([400, 300], "Hidden layer sizes of the actor and critics.",
                                 check=_positive_list)
    policy_delay: int = option(2, "Critic updates per actor and target update.", min=1)
    target_policy_noise: float = option(0.2, "Std of the smoothing noise on target actions.", min=0.0)
    target_noise_clip: float = option(0.5, "Clip of the target smoothing noise.", min=0.0)
    action_noise: Literal["none", "normal", "ornstein_uhlenbeck"] = option(
        "normal", "Exploration noise added to actions (SB3: none; every Zoo preset: normal).")
    noise_std: float = option(0.1, "Std of the exploration noise, relative to the action range.", min=0.0)


@dataclass
class DDPGConfig(OffPolicyConfig):
    """Deep Deterministic Policy Gradient (SB3 defaults)."""

    lr: float = option(1e-3, "Learning rate (the initial one when lr_schedule=linear).", min=0.0)
    net_arch: list[int] = option([400, 300], "Hidden layer sizes of the actor and critic.",
                                 check=_positive_list)
    action_noise: Literal["none", "normal", "ornstein_uhlenbeck"] = option(
        "normal", "Exploration noise added to actions (SB3: none; every Zoo preset: normal).")
    noise_std: float = option(0.1, "Std of the exploration noise, relative to the action range.", min=0.0)
