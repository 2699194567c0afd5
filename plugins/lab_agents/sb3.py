"""The agent behind every ``lab_agents`` plugin: lab's Model protocol over a stable-baselines3 or sb3-contrib
algorithm.

SB3 does the learning; this module maps lab's config onto SB3's arguments, forwards SB3's logger to lab's
metrics, hands control to the runner through an SB3 callback, evaluates on separate Monitor-wrapped envs,
and saves weights as safetensors (no pickle). A recurrent policy's state is carried through each episode when
it evaluates and plays (SB3's ``predict(state=, episode_start=)``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import warnings
from collections.abc import Callable, Mapping
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch
from sb3_contrib import ARS, QRDQN, TQC, TRPO, CrossQ, RecurrentPPO
from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    VecEnv,
    VecEnvWrapper,
    VecFrameStack,
    VecNormalize,
    sync_envs_normalization,
)

from lab.api import BuildContext, Recorder, StepCallback, load_weights, save_weights
from lab_agents import envs
from lab_agents.configs import AgentConfig, ARSConfig, OnPolicyConfig, RecurrentPPOConfig
from lab_agents.state import load_state, restore_noise, save_state

ALGORITHM_CLASSES: dict[str, type[BaseAlgorithm]] = {
    "DQNConfig": DQN, "PPOConfig": PPO, "A2CConfig": A2C, "SACConfig": SAC, "TD3Config": TD3, "DDPGConfig": DDPG,
    "ARSConfig": ARS, "QRDQNConfig": QRDQN, "TQCConfig": TQC, "TRPOConfig": TRPO, "CrossQConfig": CrossQ,
    "RecurrentPPOConfig": RecurrentPPO,
}
ACTIVATIONS = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "elu": torch.nn.ELU, "leaky_relu": torch.nn.LeakyReLU,
               "gelu": torch.nn.GELU, "silu": torch.nn.SiLU}
# Keys of lab's configs that are not SB3 constructor arguments: consumed by algorithm_kwargs, by the policy
# (POLICY_KEYS) or by the envs (lab_agents.envs).
ENV_KEYS = {"n_envs", "normalize", "norm_obs", "norm_reward", "env_kwargs", "env_wrapper", "frame_stack"}
POLICY_KEYS = {"log_std_init", "ortho_init", "use_expln", "n_quantiles", "n_critics", "lstm_hidden_size",
               "n_lstm_layers", "shared_lstm", "enable_critic_lstm"}
LAB_ONLY_KEYS = {"lr", "lr_schedule", "net_arch", "critic_arch", "activation", "gif", "clip_schedule",
                 "action_noise", "noise_std", "backbone", "rmsprop_tf_like", "policy", *ENV_KEYS, *POLICY_KEYS}
MAX_EVAL_ENVS = 10
LOG_INTERVAL_ON_POLICY = 1  # rollouts between SB3 log dumps
WEIGHTS_FILE = "policy.safetensors"
NORMALIZE_FILE = "normalize.safetensors"
META_FILE = "agent.json"


def build(context: BuildContext) -> SB3Agent:
    """The plugin factory named in lab_agents' registration."""
    return SB3Agent(context)


class SB3Agent:
    """One SB3 algorithm with its training and evaluation envs."""

    def __init__(self, context: BuildContext) -> None:
        self.config: AgentConfig = context.config
        self.env_id = str(context.target)
        self.seed = context.runner.seed
        self.device = context.device
        self.target_score: float | None = gymnasium.spec(self.env_id).reward_threshold
        self.atari = envs.is_atari(self.env_id)
        self.algorithm = ALGORITHM_CLASSES[type(self.config).__name__]
        kwargs = algorithm_kwargs(self.config)
        if not context.training and not isinstance(self.config, ARSConfig):  # evaluating or playing only
            kwargs.update(eval_only_kwargs(kwargs))
        # One env is enough to load weights into (an Atari env loads its ROM: 0.15-0.3 s each).
        self.env = self._make_env(self.config.n_envs if context.training else 1, self.seed, training=True)
        action_space = self.env.action_space
        if getattr(self.config, "action_noise", "none") != "none":
            kwargs["action_noise"] = action_noise(self.config, action_space)
        if getattr(self.config, "backbone", None):  # ARS's policy takes no features extractor
            assert context.build_features is not None
            shape = self.env.observation_space.shape
            # A factory, not a module: actor, critics and target networks each need their own weights.
            make = partial(context.build_features, self.config.backbone, shape)
            kwargs["policy_kwargs"].update(features_extractor_class=BackboneExtractor,
                                           features_extractor_kwargs={"make_module": make})
        policy = policy_name(self.config, self.env.observation_space)
        with warnings.catch_warnings():
            if not context.training:  # PPO's rollout buffer of one env is never filled here, whatever its size
                warnings.filterwarnings("ignore", message=".*mini-batch size", category=UserWarning)
            self.model = self.algorithm(policy, self.env, seed=self.seed, device=self.device, verbose=0, **kwargs)
        self.model.set_logger(Logger(folder=None, output_formats=[MetricsWriter(context.log_metrics)]))
        self.eval_envs = min(context.runner.eval_episodes, MAX_EVAL_ENVS)
        self.evaluations_at: dict[int, int] = {}  # evaluations made at each step (a confirmation is a second)
        self.restored_noise: list[list[float]] | None = None  # set by restore(), applied once learning starts

    @cached_property
    def eval_env(self) -> VecEnv:
        """The evaluation envs, built on first use: `lab play` never evaluates."""
        return self._make_env(self.eval_envs, self.seed + 10_000, training=False)

    def _make_env(self, n_envs: int, seed: int, *, training: bool, render: bool = False) -> VecEnv:
        """Monitor-wrapped vectorised envs, built as the Zoo builds them (lab_agents.envs): the config's wrappers,
        then VecNormalize, then VecFrameStack. Atari gets the standard preprocessing by default: no-op reset,
        frame skip 4 with max-pooling, 84x84 grayscale, 4 stacked frames, episodic life, reward clipping (to
        train only: Monitor sits inside the wrappers and reports the game's real score)."""
        config = self.config
        specs = envs.wrapper_specs(config.env_wrapper, self.env_id)
        env = make_vec_env(self.env_id, n_envs=n_envs, seed=seed, vec_env_cls=DummyVecEnv,
                           env_kwargs=envs.env_kwargs(config, self.env_id, render=render),
                           wrapper_class=partial(envs.wrap, specs=specs) if specs else None)
        if config.normalize:
            env = VecNormalize(env, gamma=getattr(config, "gamma", 0.99), norm_obs=config.norm_obs,
                               norm_reward=config.norm_reward and training, training=training)
        stack = envs.frame_stack(config, self.env_id)
        if stack > 1:
            env = VecFrameStack(env, n_stack=stack)
        return env

    # ------------------------------------------------------------------------------------ the protocol

    def train(self, budget: int, on_step: StepCallback) -> None:
        remaining = budget - self.model.num_timesteps
        if remaining > 0:
            # Off-policy algorithms log every 4 episodes by default: every episode gives denser curves.
            log_interval = 1 if isinstance(self.model, OffPolicyAlgorithm) else LOG_INTERVAL_ON_POLICY
            restored = self.restored_noise is not None
            # ARS ignores a callback's False (it finishes its budget): the callback raises StopLearning instead.
            callback = RunnerCallback(on_step, on_start=self._restore_noise if restored else None,
                                      raise_to_stop=isinstance(self.model, ARS))
            # A restored model continues: SB3 resets neither counters nor envs (their state was restored).
            with contextlib.suppress(StopLearning):
                self.model.learn(total_timesteps=remaining, callback=callback, log_interval=log_interval,
                                 reset_num_timesteps=self.model.num_timesteps == 0 and not restored)

    def _restore_noise(self) -> None:
        restore_noise(self.model, self.restored_noise or [])

    def evaluate(self, episodes: int) -> dict[str, float]:
        if self.config.normalize:
            sync_envs_normalization(self.env, self.eval_env)
        # SB3's evaluate_policy carries a recurrent policy's state through each episode itself.
        # Each evaluation's episodes are seeded by the step: a resumed run evaluates exactly as an uninterrupted
        # one would, and a confirmation at the same step plays other episodes.
        step = int(self.model.num_timesteps)
        count = self.evaluations_at[step] = self.evaluations_at.get(step, 0) + 1
        self.eval_env.seed(int(np.random.SeedSequence([self.seed, step, count]).generate_state(1)[0]))
        returns, lengths = evaluate_policy(self.model, self.eval_env, n_eval_episodes=episodes, deterministic=True,
                                           return_episode_rewards=True, warn=False)
        return {"mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)),
                "mean_length": float(np.mean(lengths))}

    def save(self, directory: Path) -> None:
        meta = {"algorithm": self.algorithm.__name__, "env": self.env_id, "num_timesteps": self.model.num_timesteps}
        weights: Any = self.model.policy
        if isinstance(self.model, ARS):  # its parameters are views into one flat vector: safetensors wants copies
            weights = {name: tensor.clone() for name, tensor in self.model.policy.state_dict().items()}
        save_weights(directory, weights, weights_file=WEIGHTS_FILE, settings=meta, settings_file=META_FILE)
        normalizer = find_normalizer(self.env)
        if normalizer is not None:
            save_weights(directory, normalize_stats(normalizer), weights_file=NORMALIZE_FILE)

    def load(self, directory: Path) -> None:
        load_weights(directory, self.model.policy, weights_file=WEIGHTS_FILE, device=self.device)
        if isinstance(self.model, ARS):  # ARS perturbs a flat copy of the weights: it must match the policy
            self.model.weights = torch.nn.utils.parameters_to_vector(self.model.policy.parameters()).detach()
        normalizer = find_normalizer(self.env)
        if normalizer is not None:
            stats = normalize_stats(normalizer)  # this env's statistics say which names and shapes the file must have
            load_weights(directory, stats, weights_file=NORMALIZE_FILE)
            restore_normalize_stats(normalizer, stats)
            sync_envs_normalization(self.env, self.eval_env)

    def checkpoint(self, directory: Path) -> None:
        """Everything resumption needs, none of it pickled: weights (``save``), then optimizers, RNGs, counters,
        replay buffer and the envs' state (lab_agents.state). Called at a step boundary (a rollout's start)."""
        self.save(directory)
        save_state(self.model, self.env, directory)

    def restore(self, directory: Path) -> None:
        self.load(directory)
        fresh_envs, self.restored_noise = load_state(self.model, self.env, directory, self.seed)
        if fresh_envs:
            print(f"lab: note: the envs continue with fresh episodes: their state was not saved ({fresh_envs})",
                  file=sys.stderr)

    # ------------------------------------------------------------------------------------ MLflow pyfunc

    def pyfunc_input(self) -> np.ndarray:
        """Four observations drawn from the observation space (as the policy sees them: after Atari's wrappers)."""
        space = self.eval_env.observation_space
        space.seed(self.seed)
        return np.stack([space.sample() for _ in range(4)])

    def pyfunc_predict(self, inputs: Any) -> np.ndarray:
        """The deterministic action for each observation of a batch (normalised first if the agent normalises;
        a recurrent policy takes each as the first of an episode)."""
        space = self.eval_env.observation_space
        observations = np.asarray(inputs, dtype=space.dtype).reshape(-1, *space.shape)
        normalizer = find_normalizer(self.eval_env)
        if normalizer is not None and normalizer.observation_space.shape == space.shape:
            observations = normalizer.normalize_obs(observations)
        starts = np.ones(len(observations), dtype=bool)
        actions, _ = self.model.predict(observations, episode_start=starts, deterministic=True)
        return np.asarray(actions)

    def artifacts(self, directory: Path) -> list[Path]:
        return []  # the runner records the GIF through play() (gif=false turns it off)

    def play(self, episodes: int, seed: int, recorder: Recorder) -> None:
        """Play deterministic episodes on an env built like the evaluation env, rendering what the recorder keeps."""
        env = self._make_env(1, seed, training=False, render=True)
        if self.config.normalize:
            sync_envs_normalization(self.env, env)
        fps = env.get_attr("metadata")[0].get("render_fps", 30)
        spec = gymnasium.spec(self.env_id)
        skip = envs.ATARI_FRAME_SKIP if self.atari and envs.uses_atari_wrapper(
            envs.wrapper_specs(self.config.env_wrapper, self.env_id)) else 1
        recorder.configure(fps / skip, spec.max_episode_steps)
        # The one env's own frame: VecEnv.render would tile a grid of one image, copying every frame three times.
        render = env.unwrapped.envs[0].render
        try:
            obs = env.reset()
            recorder.frame(render)
            played, length = 0, 0
            state, starts = None, np.ones(1, dtype=bool)  # a recurrent policy's state, reset at each episode start
            while played < episodes:
                action, state = self.model.predict(obs, state=state, episode_start=starts, deterministic=True)
                obs, _, starts, infos = env.step(action)
                length += 1
                # Monitor's episode info is the game's real return (unclipped, over all lives) at its real end;
                # the vectorised env has already reset itself by then.
                finished = infos[0].get("episode")
                if finished is None:
                    recorder.frame(render)
                    continue
                recorder.end_episode(finished["r"], length)
                played, length = played + 1, 0
                if played < episodes:
                    recorder.frame(render)
        finally:
            env.close()


# ---------------------------------------------------------------------------------------- config -> SB3


def algorithm_kwargs(config: AgentConfig) -> dict[str, Any]:
    """The algorithm's constructor arguments from a lab agent config."""
    values = dataclasses.asdict(config)
    kwargs = {key: value for key, value in values.items() if key not in LAB_ONLY_KEYS}
    kwargs["learning_rate"] = schedule(config.lr, config.lr_schedule)
    if "clip_schedule" in values:
        kwargs["clip_range"] = schedule(values["clip_range"], values["clip_schedule"])
    if isinstance(kwargs.get("ent_coef"), str) and not kwargs["ent_coef"].startswith("auto"):
        kwargs["ent_coef"] = float(kwargs["ent_coef"])
    kwargs["policy_kwargs"] = policy_kwargs(config, values)
    return kwargs


def policy_kwargs(config: AgentConfig, values: Mapping[str, Any]) -> dict[str, Any]:
    """SB3's ``policy_kwargs``: layers (a separate critic as ``vf``/``qf``), activation, and the policy keys the
    config has (only the policies that take them have these keys)."""
    if isinstance(config, ARSConfig) and config.policy == "linear":
        return {}  # ARS's LinearPolicy has no hidden layers and no activation
    critic = values.get("critic_arch")
    net_arch: Any = list(config.net_arch)
    if critic is not None and list(critic) != net_arch:
        net_arch = {"pi": net_arch, "vf" if isinstance(config, OnPolicyConfig) else "qf": list(critic)}
    kwargs: dict[str, Any] = {"net_arch": net_arch, "activation_fn": ACTIVATIONS[config.activation]}
    kwargs.update({key: values[key] for key in POLICY_KEYS if key in values})
    if values.get("rmsprop_tf_like"):
        kwargs.update(optimizer_class=RMSpropTFLike, optimizer_kwargs={"eps": 1e-5})
    return kwargs


def policy_name(config: AgentConfig, observation_space: gymnasium.Space) -> str:
    """Image observations (Atari after its wrappers) get SB3's NatureCNN, everything else an MLP; recurrent PPO
    their LSTM versions, ARS its linear or MLP policy."""
    if isinstance(config, ARSConfig):
        return "LinearPolicy" if config.policy == "linear" else "MlpPolicy"
    kind = "Cnn" if is_image_space(observation_space) else "Mlp"
    return f"{kind}LstmPolicy" if isinstance(config, RecurrentPPOConfig) else f"{kind}Policy"


def find_normalizer(env: VecEnv) -> VecNormalize | None:
    """The VecNormalize layer of a vectorised env (under VecFrameStack when frames are stacked)."""
    layer: Any = env
    while isinstance(layer, VecEnvWrapper):
        if isinstance(layer, VecNormalize):
            return layer
        layer = layer.venv
    return None


def eval_only_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """What a model that is only evaluated or played does not need: a replay buffer, a real optimizer."""
    changed: dict[str, Any] = {"policy_kwargs": {**kwargs["policy_kwargs"], "optimizer_class": NoOptimizer}}
    if "buffer_size" in kwargs:
        changed["buffer_size"] = 1
    return changed


class NoOptimizer:
    """Stands in for the optimizer of a model that is never trained: torch builds its first real optimizer
    through an import of torch._dynamo, 2-3 s of every `lab eval` and `lab play`."""

    def __init__(self, params: Any, **kwargs: Any) -> None:
        self.param_groups: list[dict[str, Any]] = []


def schedule(initial: float, kind: str) -> float | Callable[[float], float]:
    return LinearSchedule(start=initial, end=0.0, end_fraction=1.0) if kind == "linear" else initial


def action_noise(config: Any, action_space: gymnasium.spaces.Box) -> Any:
    dim = int(np.prod(action_space.shape))
    sigma = config.noise_std * np.ones(dim)
    if config.action_noise == "normal":
        return NormalActionNoise(mean=np.zeros(dim), sigma=sigma)
    return OrnsteinUhlenbeckActionNoise(mean=np.zeros(dim), sigma=sigma)


def normalize_stats(env: VecNormalize) -> dict[str, torch.Tensor]:
    """VecNormalize's running statistics as float64 tensors (copies: loading into them leaves the env alone)."""
    stats = {"obs_mean": env.obs_rms.mean, "obs_var": env.obs_rms.var, "obs_count": env.obs_rms.count,
             "ret_mean": env.ret_rms.mean, "ret_var": env.ret_rms.var, "ret_count": env.ret_rms.count}
    return {key: torch.tensor(np.asarray(value, dtype=np.float64)) for key, value in stats.items()}


def restore_normalize_stats(env: VecNormalize, stats: Mapping[str, torch.Tensor]) -> None:
    arrays = {key: value.numpy() for key, value in stats.items()}
    env.obs_rms.mean, env.obs_rms.var = arrays["obs_mean"], arrays["obs_var"]
    env.ret_rms.mean, env.ret_rms.var = arrays["ret_mean"], arrays["ret_var"]
    env.obs_rms.count, env.ret_rms.count = float(arrays["obs_count"]), float(arrays["ret_count"])


# ---------------------------------------------------------------------------------------- SB3 glue


class BackboneExtractor(BaseFeaturesExtractor):
    """A lab backbone plugin as SB3's features extractor."""

    def __init__(self, observation_space: gymnasium.Space, make_module: Callable[[], torch.nn.Module]) -> None:
        module = make_module()
        super().__init__(observation_space, features_dim=module.out_features)
        self.module = module

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.module(observations.float())


class StopLearning(Exception):
    """Raised by :class:`RunnerCallback` to stop an algorithm that ignores a callback's False (ARS)."""


class RunnerCallback(BaseCallback):
    """Hands control to lab's runner after every env step (evaluation, progress, stopping) and at the start of
    every rollout, SB3's one step boundary (checkpoints, Ctrl-C): there the last rollout is stored and trained
    on and the next not begun, so a checkpoint holds the whole state. Within a rollout it does not: SB3 calls
    back before it stores the step's transition and before it trains."""

    def __init__(self, on_step: StepCallback, on_start: Callable[[], None] | None = None, *,
                 raise_to_stop: bool = False) -> None:
        super().__init__()
        self.report_step = on_step  # not `on_step`: that name is BaseCallback's own method
        self.on_start = on_start
        self.raise_to_stop = raise_to_stop
        self.go_on = True

    def _on_training_start(self) -> None:
        if self.on_start is not None:
            self.on_start()

    def _on_rollout_start(self) -> None:
        self.go_on = self.report_step(self.num_timesteps, True) and self.go_on
        if not self.go_on and self.raise_to_stop:
            raise StopLearning

    def _on_step(self) -> bool:
        go_on = self.report_step(self.num_timesteps, False) and self.go_on
        if not go_on and self.raise_to_stop:
            raise StopLearning
        return go_on


class MetricsWriter(KVWriter):
    """An SB3 logger output that forwards numeric values (losses, episode returns, fps) to lab's metrics."""

    def __init__(self, log_metrics: Callable[[Mapping[str, float], int], None]) -> None:
        self.log_metrics = log_metrics

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        numbers = {key: float(value) for key, value in key_values.items()
                   if isinstance(value, int | float | np.number) and not isinstance(value, bool)}
        if numbers:
            self.log_metrics(numbers, step)

    def close(self) -> None:
        pass
