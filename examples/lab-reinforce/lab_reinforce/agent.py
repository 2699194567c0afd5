"""REINFORCE with reward-to-go and a learned baseline, on lab's Model protocol (lab.api only).

One update per ``episodes_per_update`` episodes: the policy gradient of log pi(a|s) * (G_t - V(s_t)), the
baseline regressed on G_t, an optional entropy bonus. Discrete actions use a categorical policy, Box actions a
diagonal Gaussian (state-independent log std) clipped to the bounds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from lab.api import BuildContext, Recorder, StepCallback

WEIGHTS = "reinforce.safetensors"
EVAL_SEED_OFFSET = 10_000


def build(context: BuildContext) -> Reinforce:
    return Reinforce(context)


def mlp(inputs: int, hidden: list[int], outputs: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for size in hidden:
        layers += [nn.Linear(inputs, size), nn.Tanh()]
        inputs = size
    return nn.Sequential(*layers, nn.Linear(inputs, outputs))


class Reinforce:
    def __init__(self, context: BuildContext) -> None:
        self.config = context.config
        self.env_id = str(context.target)
        self.seed = context.runner.seed
        self.device = torch.device(context.device)
        self.log_metrics = context.log_metrics
        self.env = gymnasium.make(self.env_id)
        # The runner evaluates from on_step, in the middle of a training episode: evaluation has an env of its own.
        self.eval_env = gymnasium.make(self.env_id)
        self.target_score: float | None = self.env.spec.reward_threshold if self.env.spec else None
        space = self.env.action_space
        self.discrete = isinstance(space, gymnasium.spaces.Discrete)
        outputs = int(space.n) if self.discrete else int(np.prod(space.shape))
        inputs = int(np.prod(self.env.observation_space.shape))
        self.policy = mlp(inputs, self.config.hidden, outputs).to(self.device)
        self.value = mlp(inputs, self.config.hidden, 1).to(self.device)
        self.log_std = nn.Parameter(torch.zeros(outputs, device=self.device))
        parameters = [*self.policy.parameters(), *self.value.parameters(), self.log_std]
        self.optimizer = torch.optim.Adam(parameters, lr=self.config.lr)
        self.rng = np.random.default_rng(self.seed)
        self.steps = 0

    def distribution(self, observations: torch.Tensor) -> torch.distributions.Distribution:
        output = self.policy(observations)
        if self.discrete:
            return torch.distributions.Categorical(logits=output)
        return torch.distributions.Independent(torch.distributions.Normal(output, self.log_std.exp()), 1)

    def to_env(self, action: torch.Tensor) -> Any:
        if self.discrete:
            return int(action.item())
        space = self.env.action_space
        return np.clip(action.detach().cpu().numpy(), space.low, space.high).astype(space.dtype)

    def act(self, observation: Any, *, deterministic: bool) -> Any:
        with torch.no_grad():
            distribution = self.distribution(torch.as_tensor(observation, dtype=torch.float32, device=self.device))
            if not deterministic:
                return self.to_env(distribution.sample())
            mode = distribution.probs.argmax() if self.discrete else distribution.mean
            return self.to_env(mode)

    # ------------------------------------------------------------------------------------- lab's Model protocol

    def train(self, budget: int, on_step: StepCallback) -> None:
        while self.steps < budget:
            observations, actions, returns, totals = [], [], [], []
            for _ in range(self.config.episodes_per_update):
                episode_obs, episode_actions, rewards = self.rollout()
                for _ in rewards:
                    self.steps += 1
                    if not on_step(self.steps) or self.steps >= budget:  # the budget is the budget
                        return
                observations += episode_obs
                actions += episode_actions
                returns += self.rewards_to_go(rewards)
                totals.append(sum(rewards))
            self.update(observations, actions, returns)
            self.log_metrics({"train/episode_return": float(np.mean(totals))}, self.steps)

    def rollout(self) -> tuple[list[np.ndarray], list[Any], list[float]]:
        observation, _ = self.env.reset(seed=int(self.rng.integers(2**31)))
        observations, actions, rewards, done = [], [], [], False
        while not done:
            with torch.no_grad():
                action = self.distribution(torch.as_tensor(observation, dtype=torch.float32,
                                                           device=self.device)).sample()
            observations.append(np.asarray(observation, dtype=np.float32))
            actions.append(action.cpu().numpy())
            observation, reward, terminated, truncated, _ = self.env.step(self.to_env(action))
            rewards.append(float(reward))
            done = terminated or truncated
        return observations, actions, rewards

    def rewards_to_go(self, rewards: list[float]) -> list[float]:
        returns, running = [], 0.0
        for reward in reversed(rewards):
            running = reward + self.config.gamma * running
            returns.append(running)
        return returns[::-1]

    def update(self, observations: list[np.ndarray], actions: list[Any], returns: list[float]) -> None:
        obs = torch.as_tensor(np.array(observations), device=self.device)
        acts = torch.as_tensor(np.array(actions), device=self.device)
        target = torch.as_tensor(returns, dtype=torch.float32, device=self.device)
        values = self.value(obs).squeeze(-1)
        advantage = target - values.detach() if self.config.baseline else target
        advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        distribution = self.distribution(obs)
        loss = -(distribution.log_prob(acts) * advantage).mean() - self.config.ent_coef * distribution.entropy().mean()
        if self.config.baseline:
            loss = loss + 0.5 * ((values - target) ** 2).mean() / (target.var() + 1e-8)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.log_metrics({"train/loss": float(loss.item())}, self.steps)

    def evaluate(self, episodes: int) -> dict[str, float]:
        returns, lengths = [], []
        for number in range(episodes):
            total, length = self.episode(self.eval_env, self.seed + EVAL_SEED_OFFSET + number)
            returns.append(total)
            lengths.append(length)
        return {"mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)),
                "mean_length": float(np.mean(lengths))}

    def episode(self, env: gymnasium.Env, seed: int, recorder: Recorder | None = None) -> tuple[float, int]:
        observation, _ = env.reset(seed=seed)
        if recorder is not None:
            recorder.frame(env.render)
        total, length, done = 0.0, 0, False
        while not done:
            observation, reward, terminated, truncated, _ = env.step(self.act(observation, deterministic=True))
            total, length, done = total + float(reward), length + 1, terminated or truncated
            if recorder is not None:
                recorder.frame(env.render, last=done)
        return total, length

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {f"policy.{k}": v for k, v in self.policy.state_dict().items()}
        tensors.update({f"value.{k}": v for k, v in self.value.state_dict().items()})
        tensors["log_std"] = self.log_std.detach()
        save_file({k: v.contiguous().cpu() for k, v in tensors.items()}, str(directory / WEIGHTS))
        (directory / "reinforce.json").write_text(json.dumps({"env": self.env_id, "steps": self.steps}))

    def load(self, directory: Path) -> None:
        tensors = load_file(str(directory / WEIGHTS), device=str(self.device))
        self.policy.load_state_dict({k[7:]: v for k, v in tensors.items() if k.startswith("policy.")})
        self.value.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("value.")})
        with torch.no_grad():
            self.log_std.copy_(tensors["log_std"])

    def artifacts(self, directory: Path) -> list[Path]:
        if not self.config.gif:
            return []
        recorder = Recorder()
        self.play(1, self.seed, recorder)
        return [recorder.save(directory / "play.gif")]

    def play(self, episodes: int, seed: int, recorder: Recorder) -> None:
        env = gymnasium.make(self.env_id, render_mode="rgb_array")
        recorder.configure(env.metadata.get("render_fps", 30), env.spec.max_episode_steps if env.spec else None)
        try:
            for number in range(episodes):
                recorder.end_episode(*self.episode(env, seed + number, recorder))
        finally:
            env.close()
