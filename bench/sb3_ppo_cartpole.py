"""The plain stable-baselines3 script a user would write for lab's PPO CartPole preset (the baseline of
bench/ppo_vs_sb3.py): the RL Baselines3 Zoo hyperparameters, the same seed, budget and evaluation schedule
as `lab run plugin=ppo env=CartPole`, the best model kept by an EvalCallback.

    python bench/sb3_ppo_cartpole.py --seed 0 --steps 100000 --eval-every 4000

Prints ``best mean_reward: X at step Y`` (the EvalCallback's best_mean_reward) when done.
"""

from __future__ import annotations

import argparse
import tempfile

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import DummyVecEnv

N_ENVS = 8


class BestStep(BaseCallback):
    """Called by the EvalCallback on a new best: remembers at which env step it was."""

    def __init__(self) -> None:
        super().__init__()
        self.step: int | None = None

    def _on_step(self) -> bool:
        self.step = self.num_timesteps
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--eval-every", type=int, default=4000, help="env steps between evaluations")
    parser.add_argument("--eval-episodes", type=int, default=20)
    args = parser.parse_args()

    # One torch thread: lab's preset runs with threads=1 too (fastest for a 64x64 MLP on a CPU).
    torch.set_num_threads(1)
    env = make_vec_env("CartPole-v1", n_envs=N_ENVS, seed=args.seed, vec_env_cls=DummyVecEnv)
    model = PPO(
        "MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0,
        learning_rate=LinearSchedule(1e-3, 0.0, 1.0), clip_range=LinearSchedule(0.2, 0.0, 1.0),
        policy_kwargs=dict(net_arch=[64, 64], activation_fn=torch.nn.Tanh), seed=args.seed, device="cpu",
        verbose=0,
    )
    # lab evaluates on min(episodes, 10) envs seeded seed + 10_000; same here.
    eval_env = make_vec_env("CartPole-v1", n_envs=min(args.eval_episodes, 10), seed=args.seed + 10_000,
                            vec_env_cls=DummyVecEnv)
    best_step = BestStep()
    with tempfile.TemporaryDirectory(prefix="sb3-ppo-") as tmp:
        # EvalCallback counts callback calls, one per vec-env step of N_ENVS env steps; lab counts env steps.
        evaluation = EvalCallback(eval_env, callback_on_new_best=best_step,
                                  eval_freq=args.eval_every // N_ENVS, n_eval_episodes=args.eval_episodes,
                                  deterministic=True, best_model_save_path=tmp, verbose=0)
        model.learn(total_timesteps=args.steps, callback=evaluation)
        model.save(f"{tmp}/final_model")
    print(f"best mean_reward: {evaluation.best_mean_reward:.4g} at step {best_step.step}")
    print(f"steps: {model.num_timesteps}")


if __name__ == "__main__":
    main()
