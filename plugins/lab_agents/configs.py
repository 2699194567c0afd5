"""Config dataclasses of the agents (stable-baselines3 and sb3-contrib): one field per key, each with its
one-line doc.

Defaults are the algorithms' own; presets (``presets.py``, the Zoo's files) override them per environment. Names
follow SB3 except ``lr`` (``learning_rate``), the schedules, the policy keys ``net_arch``/``critic_arch``/
``activation`` (SB3's ``policy_kwargs``), ``action_noise`` (the Zoo's ``noise_type``) and the env keys
(``norm_obs``/``norm_reward``: the Zoo's ``normalize`` kwargs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from lab.api import option

Activation = Literal["tanh", "relu", "elu", "leaky_relu", "gelu", "silu"]
Schedule = Literal["constant", "linear"]
Noise = Literal["none", "normal", "ornstein_uhlenbeck"]


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


def _wrappers(value: list[Any]) -> str | None:
    """The shape of the Zoo's ``env_wrapper``: names, or one-entry mappings of a name to its keyword arguments.
    Whether each name exists is checked with the env (lab_agents.envs.check_wrappers)."""
    valid = ("valid: a list of wrapper names or {name:{keyword:value}} entries, e.g. [TimeFeatureWrapper] or "
             "[{rl_zoo3.wrappers.FrameSkip:{skip:2}}]")
    for item in value:
        if isinstance(item, str) and item:
            continue
        if (isinstance(item, dict) and len(item) == 1 and isinstance(next(iter(item)), str)
                and isinstance(next(iter(item.values())), dict | None)):
            continue
        return valid
    return None


def _positive_fraction(value: float) -> str | None:
    # SB3's linear schedule divides by it: 0 raises ZeroDivisionError at the first step.
    return None if 0.0 < value <= 1.0 else "must be in (0, 1]"


@dataclass
class AgentConfig:
    """Keys every agent has: its learning rate, policy network and envs."""

    lr: float = option(3e-4, "Learning rate (the initial one when lr_schedule=linear).", min=0.0)
    lr_schedule: Schedule = option("constant", "constant, or linear decay of lr to 0 over the budget.")
    net_arch: list[int] = option([64, 64], "Hidden layer sizes of the policy (and of the critics unless "
                                 "critic_arch is set).", check=_positive_list)
    activation: Activation = option("tanh", "Activation of the hidden layers.")
    n_envs: int = option(1, "Parallel training envs (vectorised in one process).", min=1)
    normalize: bool = option(False, "Normalise observations and rewards with running statistics (VecNormalize).")
    norm_obs: bool = option(True, "With normalize=true: normalise observations.")
    norm_reward: bool = option(True, "With normalize=true: normalise rewards (training envs only).")
    env_kwargs: dict[str, Any] = option({}, "Keyword arguments of the env's constructor: env_kwargs.NAME=value, "
                                        "e.g. env_kwargs.continuous=true on LunarLander.")
    env_wrapper: list[Any] | None = option(
        None, "Gymnasium wrappers around each env, innermost first: names (TimeFeatureWrapper, "
        "gymnasium.wrappers.X, rl_zoo3.wrappers.X) or {name:{keyword:value}}; null = AtariWrapper on Atari games, "
        "none elsewhere.", check=_wrappers)
    frame_stack: int | None = option(None, "Stack the last N observations; null = 4 on Atari games, none "
                                     "elsewhere; 1 = none.", min=1)
    gif: bool = option(True, "Log a GIF of the best model playing one episode.")


@dataclass
class OnPolicyConfig(AgentConfig):
    """Keys shared by PPO, A2C, TRPO and recurrent PPO."""

    gamma: float = option(0.99, "Discount factor.", check=_fraction)
    n_steps: int = option(2048, "Steps per env per rollout.", min=1)
    gae_lambda: float = option(0.95, "GAE lambda.", check=_fraction)
    normalize_advantage: bool = option(True, "Normalise advantages per batch.")
    use_sde: bool = option(False, "State-dependent exploration (continuous actions only).")
    sde_sample_freq: int = option(-1, "Resample the SDE noise every N steps; -1 only at rollout start.",
                                  min=-1)
    log_std_init: float = option(0.0, "Initial log std of Gaussian policies (continuous actions).")
    ortho_init: bool = option(True, "Orthogonal initialisation of the networks.")
    use_expln: bool = option(False, "With use_sde: expln instead of exp for the std (keeps it positive, "
                                    "grows slower).")
    critic_arch: list[int] | None = option(None, "Hidden layer sizes of the value network; null = net_arch.",
                                           check=_positive_list)
    backbone: str | None = option(None, "A backbone plugin (mlp, transformer, ...) as the features extractor; "
                                  "net_arch layers follow it. null = SB3's default.", plugin_kind="backbone")


@dataclass
class ActorCriticConfig(OnPolicyConfig):
    """Keys of the on-policy agents that train actor and critic on one loss (PPO, A2C, recurrent PPO)."""

    ent_coef: float = option(0.0, "Entropy bonus coefficient.", min=0.0)
    vf_coef: float = option(0.5, "Value loss coefficient.", min=0.0)
    max_grad_norm: float = option(0.5, "Gradient clipping norm.", min=0.0)


@dataclass
class PPOConfig(ActorCriticConfig):
    """Proximal Policy Optimization (SB3 defaults)."""

    batch_size: int = option(64, "Minibatch size.", min=1)
    n_epochs: int = option(10, "Epochs over each rollout.", min=1)
    clip_range: float = option(0.2, "Clipping parameter (the initial one when clip_schedule=linear).", min=0.0)
    clip_schedule: Schedule = option("constant", "constant, or linear decay of clip_range to 0.")
    target_kl: float | None = option(None, "Stop an update early past this KL divergence; null = never.")


@dataclass
class RecurrentPPOConfig(PPOConfig):
    """PPO with an LSTM policy (sb3-contrib's RecurrentPPO defaults): its state is carried through each episode,
    in training, evaluation, play and resume."""

    n_steps: int = option(128, "Steps per env per rollout.", min=1)
    batch_size: int = option(128, "Minibatch size (of sequences' steps).", min=1)
    lstm_hidden_size: int = option(256, "Units of the LSTM.", min=1)
    n_lstm_layers: int = option(1, "Stacked LSTM layers.", min=1)
    shared_lstm: bool = option(False, "One LSTM for actor and critic.")
    enable_critic_lstm: bool = option(True, "A separate LSTM for the critic (when shared_lstm=false).")


@dataclass
class A2CConfig(ActorCriticConfig):
    """Advantage Actor-Critic (SB3 defaults)."""

    lr: float = option(7e-4, "Learning rate (the initial one when lr_schedule=linear).", min=0.0)
    n_steps: int = option(5, "Steps per env per update.", min=1)
    gae_lambda: float = option(1.0, "GAE lambda (1.0 = classic advantage).", check=_fraction)
    normalize_advantage: bool = option(False, "Normalise advantages per batch.")
    use_rms_prop: bool = option(True, "RMSprop optimizer (else Adam).")
    rmsprop_tf_like: bool = option(False, "TensorFlow's RMSprop (SB3's RMSpropTFLike, eps 1e-5), as the "
                                          "Zoo's Atari preset uses.")


@dataclass
class TRPOConfig(OnPolicyConfig):
    """Trust Region Policy Optimization (sb3-contrib defaults)."""

    lr: float = option(1e-3, "Learning rate of the value network (the policy takes trust-region steps).",
                       min=0.0)
    batch_size: int = option(128, "Minibatch size of the value network's updates.", min=1)
    cg_max_steps: int = option(15, "Conjugate gradient steps for the search direction.", min=1)
    cg_damping: float = option(0.1, "Damping of the Hessian-vector product.", min=0.0)
    line_search_shrinking_factor: float = option(0.8, "Step shrink factor of the line search.",
                                                 check=_positive_fraction)
    line_search_max_iter: int = option(10, "Line search steps at most.", min=1)
    n_critic_updates: int = option(10, "Value network updates per rollout.", min=1)
    target_kl: float = option(0.01, "KL divergence bound of each policy update.", min=0.0)
    sub_sampling_factor: int = option(1, "Use every Nth sample of the rollout for the policy step.", min=1)


@dataclass
class ARSConfig(AgentConfig):
    """Augmented Random Search (sb3-contrib defaults): no gradients, perturbed copies of the policy."""

    lr: float = option(0.02, "Step size of the weight update (the initial one when lr_schedule=linear).",
                       min=0.0)
    activation: Activation = option("relu", "Activation of the hidden layers (policy=mlp).")
    policy: Literal["mlp", "linear"] = option("mlp", "mlp (net_arch layers), or linear (no hidden layer).")
    n_delta: int = option(8, "Random perturbations per update.", min=1)
    n_top: int | None = option(None, "Best perturbations used in the update; null = all of them.", min=1)
    delta_std: float = option(0.05, "Std of the perturbations.", min=0.0)
    zero_policy: bool = option(True, "Start from all-zero weights.")
    alive_bonus_offset: float = option(0.0, "Added to each step's reward in the update (cancels an alive "
                                            "bonus).")
    n_eval_episodes: int = option(1, "Episodes per perturbation.", min=1)


@dataclass
class OffPolicyConfig(AgentConfig):
    """Keys shared by the replay-buffer agents (DQN, QR-DQN, SAC, TD3, DDPG, TQC, CrossQ)."""

    gamma: float = option(0.99, "Discount factor.", check=_fraction)
    activation: Activation = option("relu", "Activation of the hidden layers.")
    buffer_size: int = option(1_000_000, "Replay buffer size.", min=1)
    learning_starts: int = option(100, "Steps of random actions before learning starts.", min=0)
    batch_size: int = option(256, "Minibatch size.", min=1)
    train_freq: int = option(1, "Update the model every N steps.", min=1)
    gradient_steps: int = option(1, "Gradient steps per update; -1 = as many as env steps.", min=-1)
    backbone: str | None = option(None, "A backbone plugin (mlp, transformer, ...) as the features extractor; "
                                  "net_arch layers follow it. null = SB3's default.", plugin_kind="backbone")


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
    max_grad_norm: float | None = option(10.0, "Gradient clipping norm.", min=0.0)


@dataclass
class QRDQNConfig(DQNConfig):
    """Quantile Regression DQN (sb3-contrib defaults): a distribution of returns per action."""

    lr: float = option(5e-5, "Learning rate (the initial one when lr_schedule=linear).", min=0.0)
    exploration_fraction: float = option(0.005, "Fraction of the budget over which epsilon decays.",
                                         check=_positive_fraction)
    exploration_final_eps: float = option(0.01, "Final epsilon of epsilon-greedy.", check=_fraction)
    max_grad_norm: float | None = option(None, "Gradient clipping norm; null = none.", min=0.0)
    n_quantiles: int = option(200, "Quantiles of the return distribution.", min=1)


@dataclass
class ContinuousOffPolicyConfig(OffPolicyConfig):
    """Keys shared by the actor-critic replay-buffer agents (SAC, TD3, DDPG, TQC, CrossQ)."""

    critic_arch: list[int] | None = option(None, "Hidden layer sizes of the critics; null = net_arch.",
                                           check=_positive_list)
    action_noise: Noise = option("none", "Exploration noise added to actions.")
    noise_std: float = option(0.1, "Std of the exploration noise, relative to the action range.", min=0.0)


@dataclass
class MaxEntropyConfig(ContinuousOffPolicyConfig):
    """Keys of the agents with SAC's entropy-regularised actor and its gSDE exploration (SAC, TQC, CrossQ)."""

    ent_coef: str = option("auto", "Entropy coefficient: auto (learned), auto_<initial value>, or a number.",
                           check=_ent_coef)
    use_sde: bool = option(False, "State-dependent exploration instead of Gaussian noise.")
    sde_sample_freq: int = option(-1, "Resample the SDE noise every N steps; -1 only at rollout start.",
                                  min=-1)
    use_sde_at_warmup: bool = option(False, "With use_sde: explore with it before learning starts too.")
    log_std_init: float = option(-3.0, "Initial log std when use_sde=true.")
    use_expln: bool = option(False, "With use_sde: expln instead of exp for the std.")


@dataclass
class TargetNetworksConfig(ContinuousOffPolicyConfig):
    """Keys of the agents with target networks (SAC, TQC, TD3, DDPG; CrossQ has none)."""

    tau: float = option(0.005, "Soft update coefficient of the target networks.", check=_fraction)


@dataclass
class SACConfig(TargetNetworksConfig, MaxEntropyConfig):
    """Soft Actor-Critic (SB3 defaults)."""

    net_arch: list[int] = option([256, 256], "Hidden layer sizes of the actor (and of the critics unless "
                                 "critic_arch is set).", check=_positive_list)
    target_update_interval: int = option(1, "Gradient steps between target network updates.", min=1)


@dataclass
class TQCConfig(SACConfig):
    """Truncated Quantile Critics (sb3-contrib defaults): SAC with distributional critics."""

    top_quantiles_to_drop_per_net: int = option(2, "Top quantiles of each critic dropped from the target.",
                                                min=0)
    n_quantiles: int = option(25, "Quantiles per critic.", min=1)
    n_critics: int = option(2, "Critic networks.", min=1)


@dataclass
class CrossQConfig(MaxEntropyConfig):
    """CrossQ (sb3-contrib defaults): SAC without target networks, with batch normalisation in the critics."""

    lr: float = option(1e-3, "Learning rate (the initial one when lr_schedule=linear).", min=0.0)
    net_arch: list[int] = option([256, 256], "Hidden layer sizes of the actor.", check=_positive_list)
    critic_arch: list[int] | None = option([1024, 1024], "Hidden layer sizes of the critics; null = net_arch.",
                                           check=_positive_list)
    policy_delay: int = option(3, "Critic updates per actor update.", min=1)


@dataclass
class TD3Config(TargetNetworksConfig):
    """Twin Delayed DDPG (SB3 defaults)."""

    lr: float = option(1e-3, "Learning rate (the initial one when lr_schedule=linear).", min=0.0)
    net_arch: list[int] = option([400, 300], "Hidden layer sizes of the actor (and of the critics unless "
                                 "critic_arch is set).", check=_positive_list)
    policy_delay: int = option(2, "Critic updates per actor and target update.", min=1)
    target_policy_noise: float = option(0.2, "Std of the smoothing noise on target actions.", min=0.0)
    target_noise_clip: float = option(0.5, "Clip of the target smoothing noise.", min=0.0)
    action_noise: Noise = option("normal", "Exploration noise added to actions (SB3: none; every Zoo preset: "
                                           "normal).")


@dataclass
class DDPGConfig(TargetNetworksConfig):
    """Deep Deterministic Policy Gradient (SB3 defaults)."""

    lr: float = option(1e-3, "Learning rate (the initial one when lr_schedule=linear).", min=0.0)
    net_arch: list[int] = option([400, 300], "Hidden layer sizes of the actor (and of the critic unless "
                                 "critic_arch is set).", check=_positive_list)
    action_noise: Noise = option("normal", "Exploration noise added to actions (SB3: none; every Zoo preset: "
                                           "normal).")
