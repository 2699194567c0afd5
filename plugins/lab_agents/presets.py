"""Per (agent, env) presets: the published RL Baselines3 Zoo hyperparameters, in lab's key names.

Values come from rl-baselines3-zoo ``hyperparams/<algo>.yml`` (``n_timesteps`` -> ``steps``,
``learning_rate: lin_X`` -> ``lr=X lr_schedule=linear``, ``policy_kwargs`` -> ``net_arch`` etc.). Zoo's
``*-v2`` Box2D entries are used for gymnasium's ``*-v3`` envs. Where the Zoo has no entry the agent keeps
SB3's defaults. lab adds its runner choice to every preset: an evaluation schedule of 25 evaluations over the
budget. (Agents train with one torch thread, fastest for these small networks on a CPU: that is the default of
``threads=`` for every agent, see lab.core.options.THREADS_BY_KIND.)
"""

from __future__ import annotations

from typing import Any

from lab.api import Preset

ZOO = "https://github.com/DLR-RM/rl-baselines3-zoo/tree/master/hyperparams"
EVALUATIONS_PER_BUDGET = 25

_DQN_BOX2D_STYLE = dict(steps=100_000, lr=6.3e-4, batch_size=128, buffer_size=50_000, learning_starts=0,
                        gamma=0.99, target_update_interval=250, train_freq=4, gradient_steps=-1,
                        exploration_fraction=0.12, exploration_final_eps=0.1, net_arch=[256, 256])
_PPO_LUNAR = dict(n_envs=16, steps=1_000_000, n_steps=1024, batch_size=64, gae_lambda=0.98, gamma=0.999,
                  n_epochs=4, ent_coef=0.01)
_A2C_SDE = dict(normalize=True, ent_coef=0.0, max_grad_norm=0.5, n_steps=8, gae_lambda=0.9, vf_coef=0.4,
                gamma=0.99, use_rms_prop=True, normalize_advantage=False, lr=7e-4, lr_schedule="linear",
                use_sde=True, log_std_init=-2.0, ortho_init=False)
_TD3_STYLE = dict(gamma=0.98, buffer_size=200_000, learning_starts=10_000, action_noise="normal",
                  noise_std=0.1, gradient_steps=1, train_freq=1, lr=1e-3, net_arch=[400, 300])

ZOO_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "dqn": {
        "CartPole-v1": dict(steps=50_000, lr=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000,
                            gamma=0.99, target_update_interval=10, train_freq=256, gradient_steps=128,
                            exploration_fraction=0.16, exploration_final_eps=0.04, net_arch=[256, 256]),
        "LunarLander-v3": _DQN_BOX2D_STYLE,
        "Acrobot-v1": _DQN_BOX2D_STYLE,
        "MountainCar-v0": dict(steps=120_000, lr=4e-3, batch_size=128, buffer_size=10_000, learning_starts=1000,
                               gamma=0.98, target_update_interval=600, train_freq=16, gradient_steps=8,
                               exploration_fraction=0.2, exploration_final_eps=0.07, net_arch=[256, 256]),
    },
    "ppo": {
        "CartPole-v1": dict(n_envs=8, steps=100_000, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98,
                            n_epochs=20, ent_coef=0.0, lr=1e-3, lr_schedule="linear", clip_range=0.2,
                            clip_schedule="linear"),
        "Pendulum-v1": dict(n_envs=4, steps=100_000, n_steps=1024, gae_lambda=0.95, gamma=0.9, n_epochs=10,
                            ent_coef=0.0, lr=1e-3, clip_range=0.2, use_sde=True, sde_sample_freq=4),
        "LunarLander-v3": _PPO_LUNAR,
        "LunarLanderContinuous-v3": _PPO_LUNAR,
        "MountainCar-v0": dict(normalize=True, n_envs=16, steps=1_000_000, n_steps=16, gae_lambda=0.98,
                               gamma=0.99, n_epochs=4, ent_coef=0.0),
        "MountainCarContinuous-v0": dict(normalize=True, n_envs=1, steps=20_000, batch_size=256, n_steps=8,
                                         gamma=0.9999, lr=7.77e-5, ent_coef=0.00429, clip_range=0.1,
                                         n_epochs=10, gae_lambda=0.9, max_grad_norm=5.0, vf_coef=0.19,
                                         use_sde=True, log_std_init=-3.29, ortho_init=False),
        "Acrobot-v1": dict(normalize=True, n_envs=16, steps=1_000_000, n_steps=256, gae_lambda=0.94,
                           gamma=0.99, n_epochs=4, ent_coef=0.0),
        "BipedalWalker-v3": dict(normalize=True, n_envs=32, steps=5_000_000, n_steps=2048, batch_size=64,
                                 gae_lambda=0.95, gamma=0.999, n_epochs=10, ent_coef=0.0, lr=3e-4,
                                 clip_range=0.18),
    },
    "a2c": {
        "CartPole-v1": dict(n_envs=8, steps=500_000, ent_coef=0.0),
        "LunarLander-v3": dict(n_envs=8, steps=200_000, gamma=0.995, n_steps=5, lr=8.3e-4,
                               lr_schedule="linear", ent_coef=1e-5),
        "Acrobot-v1": dict(normalize=True, n_envs=16, steps=500_000, ent_coef=0.0),
        "MountainCar-v0": dict(normalize=True, n_envs=16, steps=1_000_000, ent_coef=0.0),
        "Pendulum-v1": dict(_A2C_SDE, n_envs=8, steps=1_000_000),
        "LunarLanderContinuous-v3": dict(_A2C_SDE, n_envs=4, steps=5_000_000),
        "MountainCarContinuous-v0": dict(normalize=True, n_envs=4, n_steps=100, steps=100_000, ent_coef=0.0,
                                         use_sde=True, sde_sample_freq=16, log_std_init=0.0, ortho_init=False),
        "BipedalWalker-v3": dict(_A2C_SDE, n_envs=16, steps=5_000_000, lr=9.6e-4),
    },
    "sac": {
        "Pendulum-v1": dict(steps=20_000, lr=1e-3),
        "LunarLanderContinuous-v3": dict(steps=500_000, lr=7.3e-4, lr_schedule="linear", buffer_size=1_000_000,
                                         batch_size=256, ent_coef="auto", gamma=0.99, tau=0.01, train_freq=1,
                                         gradient_steps=1, learning_starts=10_000, net_arch=[400, 300]),
        "MountainCarContinuous-v0": dict(steps=50_000, lr=3e-4, buffer_size=50_000, batch_size=512,
                                         ent_coef="0.1", train_freq=32, gradient_steps=32, gamma=0.9999,
                                         tau=0.01, learning_starts=0, use_sde=True, log_std_init=-3.67,
                                         net_arch=[64, 64]),
        "BipedalWalker-v3": dict(steps=500_000, lr=7.3e-4, buffer_size=300_000, batch_size=256, ent_coef="auto",
                                 gamma=0.98, tau=0.02, train_freq=64, gradient_steps=64, learning_starts=10_000,
                                 use_sde=True, log_std_init=-3.0, net_arch=[400, 300]),
    },
    "td3": {
        "Pendulum-v1": dict(_TD3_STYLE, steps=20_000),
        "LunarLanderContinuous-v3": dict(_TD3_STYLE, steps=300_000),
        "MountainCarContinuous-v0": dict(steps=300_000, action_noise="ornstein_uhlenbeck", noise_std=0.5,
                                         gradient_steps=1, train_freq=1, lr=1e-3, batch_size=256,
                                         net_arch=[400, 300]),
        "BipedalWalker-v3": dict(_TD3_STYLE, steps=1_000_000),
    },
    "ddpg": {
        "Pendulum-v1": dict(_TD3_STYLE, steps=20_000),
        "LunarLanderContinuous-v3": dict(_TD3_STYLE, steps=300_000),
        "BipedalWalker-v3": dict(_TD3_STYLE, steps=1_000_000),
    },
}


# The Zoo's `atari` entries (one set of values for every Atari game, CNN policy on the standard wrappers).
# net_arch=[]: the heads sit directly on NatureCNN's 512 features, SB3's default for CNN policies. Zoo's A2C
# also swaps in a TF-style RMSprop (eps 1e-5); lab's A2C uses torch's RMSprop with SB3's eps 1e-5.
ATARI_PRESETS: dict[str, dict[str, Any]] = {
    "dqn": dict(steps=10_000_000, lr=1e-4, batch_size=32, buffer_size=100_000, learning_starts=100_000,
                target_update_interval=1000, train_freq=4, gradient_steps=1, exploration_fraction=0.1,
                exploration_final_eps=0.01, net_arch=[], eval_episodes=5),
    "ppo": dict(n_envs=8, steps=10_000_000, n_steps=128, n_epochs=4, batch_size=256, lr=2.5e-4,
                lr_schedule="linear", clip_range=0.1, clip_schedule="linear", vf_coef=0.5, ent_coef=0.01, net_arch=[],
                eval_episodes=5),
    "a2c": dict(n_envs=16, steps=10_000_000, ent_coef=0.01, vf_coef=0.25, net_arch=[], eval_episodes=5),
}


# lab's own games (envs/lab_envs) have no Zoo entry: these were tuned here, measured in BENCHMARKS.md
# (bench/solve.py), and reach each game's threshold on seeds 0-2.
LAB_GAMES = "lab: tuned for lab's own games, see BENCHMARKS.md (bench/solve.py)"
GAME_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "ppo": {
        "lab/Snake-v0": dict(n_envs=16, steps=150_000, n_steps=128, batch_size=256, n_epochs=10, lr=5e-4,
                             ent_coef=0.01, gamma=0.97, gae_lambda=0.95),
        "lab/Maze-v0": dict(n_envs=16, steps=150_000, n_steps=128, batch_size=256, n_epochs=15, lr=7e-4,
                            ent_coef=0.01, gamma=0.97, gae_lambda=0.95, net_arch=[128, 128]),
        "lab/Dock-v0": dict(n_envs=8, steps=200_000, n_steps=256, batch_size=256, n_epochs=10, gamma=0.98,
                            gae_lambda=0.95, ent_coef=0.0, lr=3e-4, clip_range=0.2, net_arch=[64, 64]),
    },
}


def _is_atari(env_id: str) -> bool:
    import gymnasium

    return env_id in gymnasium.registry and str(gymnasium.spec(env_id).entry_point).startswith("ale_py")


def preset_for(algo: str, env_id: str) -> Preset:
    """The Zoo preset of ``algo`` on ``env_id`` (or SB3 defaults), plus lab's runner choices."""
    zoo, name = ZOO_PRESETS.get(algo, {}).get(env_id), f"zoo:{algo}/{env_id}"
    if zoo is None and algo in ATARI_PRESETS and _is_atari(env_id):
        zoo, name = ATARI_PRESETS[algo], f"zoo:{algo}/atari"
    game = GAME_PRESETS.get(algo, {}).get(env_id)
    values: dict[str, Any] = dict(zoo or game or {})
    if "steps" in values:
        values["eval_every"] = max(1000, values["steps"] // EVALUATIONS_PER_BUDGET)
    if game is not None:
        return Preset(f"lab:{algo}/{env_id}", values, LAB_GAMES)
    if zoo is None:
        return Preset(f"sb3-defaults:{algo}", values, "no Zoo entry: SB3's defaults")
    return Preset(name, values, f"{ZOO}/{algo}.yml")
