"""Per (agent, env) presets: the RL Baselines3 Zoo's own hyperparameter files, read from the installed rl-zoo3
at run time and translated into lab's keys (``lab_agents.zoo``: ``n_timesteps`` -> ``steps``,
``learning_rate: lin_X`` -> ``lr=X lr_schedule=linear``, ``policy_kwargs`` -> ``net_arch`` etc.), chosen as the
Zoo chooses: the env's entry, else ``atari`` for an Atari game, else ``default``. lab's own games keep the presets
tuned here. lab adds its runner choice to every preset: an evaluation schedule of 25 evaluations over the
budget. (Agents train with one torch thread, fastest for these small networks on a CPU: that is the default of
``threads=`` for every agent, see lab.core.options.THREADS_BY_KIND.)
"""

from __future__ import annotations

from typing import Any

from lab.api import ConfigError, Preset

EVALUATIONS_PER_BUDGET = 25


# lab's own games (envs/lab_envs) have no Zoo entry: these were tuned here, measured in BENCHMARKS.md
# (bench/solve.py), and reach each game's threshold on seeds 0-2.
LAB_GAME_PREFIX = "lab/"
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


def preset_for(algo: str, config: type, env_id: str) -> Preset:
    """The Zoo's preset of ``algo`` on ``env_id`` in lab's keys (lab's own for its games), plus lab's runner
    choices. A Zoo entry lab cannot translate is refused, naming the key."""
    from lab_agents import zoo

    game = GAME_PRESETS.get(algo, {}).get(env_id)
    entry = None if env_id.startswith(LAB_GAME_PREFIX) else zoo.entry_name(algo, env_id, atari=_is_atari(env_id))
    if game is not None or entry is None:
        values = dict(game or {})
        _add_eval_schedule(values)
        if game is not None:
            return Preset(f"lab:{algo}/{env_id}", values, LAB_GAMES)
        return Preset(f"defaults:{algo}", values, "no Zoo entry: the algorithm's own defaults")
    name = f"zoo:{algo}/{entry}"
    source = f"rl-zoo3 {zoo.zoo_version()}, rl_zoo3/hyperparams/{algo}.yml"
    try:
        values = zoo.translate(zoo.entries(algo)[entry], config)
    except zoo.Untranslatable as e:
        raise ConfigError(f"preset {name} ({source}) cannot be translated: {e}") from None
    _add_eval_schedule(values)
    return Preset(name, values, source)


def _add_eval_schedule(values: dict[str, Any]) -> None:
    if "steps" in values:
        values["eval_every"] = max(1000, values["steps"] // EVALUATIONS_PER_BUDGET)
