"""An SB3 algorithm's whole training state, without pickle: what an agent checkpoint holds besides its weights.

SB3's own ``save()`` writes a zip of cloudpickled objects and ``save_replay_buffer()`` a pickle: loading either
can run code from whoever wrote the file. Here instead:
- optimizers (``_get_torch_save_params``, so SAC's entropy optimizer too), extra torch variables (SAC's
  ``log_ent_coef``), the last observations and the global RNGs go through ``lab.api.save_training_state``
  (safetensors + JSON);
- counters, episode statistics and action-noise state are JSON values;
- the replay buffer is an ``.npz`` of its filled rows (loaded with ``allow_pickle=False``);
- the envs' state (each env's wrappers and game, and VecNormalize's running returns) is JSON from
  ``lab.api.snapshot_env``, for envs that hold plain data only (classic control, lab's games). Other envs
  (Box2D, Atari, MuJoCo) start a fresh episode on resume.
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.distributions import StateDependentNoiseDistribution
from stable_baselines3.common.noise import OrnsteinUhlenbeckActionNoise, VectorizedActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.utils import get_device
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper, VecFrameStack, VecNormalize

from lab.api import decode_state, encode_state, load_training_state, restore_env, save_training_state, snapshot_env

REPLAY_FILE = "replay_buffer.npz"
ENV_STATE_FILE = "env_state.json"
COUNTERS = ("num_timesteps", "_n_updates", "_episode_num", "_n_calls", "_current_progress_remaining",
            "exploration_rate")
LAST = ("_last_obs", "_last_episode_starts", "_last_original_obs")
# A recurrent policy's state at the step boundary (sb3-contrib's RNNStates: (hidden, cell) of actor and critic)
# gSDE's exploration noise, drawn at a rollout's start (and every sde_sample_freq steps): a checkpoint at that
# boundary holds the noise the next steps use
SDE_NOISE = ("exploration_mat", "exploration_matrices")
LSTM_STATES = {"lstm_pi_hidden": ("pi", 0), "lstm_pi_cell": ("pi", 1), "lstm_vf_hidden": ("vf", 0),
               "lstm_vf_cell": ("vf", 1)}
BUFFER_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


def save_state(model: BaseAlgorithm, env: VecEnv, directory: Path) -> None:
    """Write ``model``'s training state (not its weights: the agent's ``save`` has those) to ``directory``."""
    optimizer_names, variable_names = model._get_torch_save_params()
    values: dict[str, Any] = {name: getattr(model, name) for name in COUNTERS if hasattr(model, name)}
    # Monitor writes Python numbers; ARS fills the buffer with numpy ones
    values["ep_info_buffer"] = [{key: _number(value) for key, value in info.items()}
                                for info in model.ep_info_buffer or []]
    values["ep_success_buffer"] = [bool(x) for x in model.ep_success_buffer or []]
    values["action_noise"] = _noise_state(model.action_noise)
    tensors = {name: _tensor(getattr(model, name)) for name in LAST if isinstance(getattr(model, name), np.ndarray)}
    tensors.update({name: getattr(model, name).detach() for name in variable_names})
    for owner, distribution in _sde_distributions(model):
        tensors.update({f"sde_{owner}_{name}": getattr(distribution, name).detach() for name in SDE_NOISE
                        if isinstance(getattr(distribution, name, None), torch.Tensor)})
    lstm = getattr(model, "_last_lstm_states", None)
    if lstm is not None:
        tensors.update({name: getattr(lstm, net)[index].detach() for name, (net, index) in LSTM_STATES.items()})
    save_training_state(directory, optimizers={name: _attribute(model, name) for name in optimizer_names[1:]},
                        tensors=tensors, values=values)
    if isinstance(model, OffPolicyAlgorithm) and model.replay_buffer is not None:
        _save_buffer(model.replay_buffer, directory / REPLAY_FILE)
    (directory / ENV_STATE_FILE).write_text(json.dumps(_env_state(env)))


def load_state(model: BaseAlgorithm, env: VecEnv, directory: Path, seed: int) -> tuple[str, list[list[float]]]:
    """Restore what :func:`save_state` wrote into ``model`` (built from the same config, weights loaded) and its
    envs. Returns why the envs start afresh ("" when they continue mid-episode) and the action noise's state,
    for :func:`restore_noise` once learning has started."""
    optimizer_names, variable_names = model._get_torch_save_params()
    values, tensors = load_training_state(
        directory, optimizers={name: _attribute(model, name) for name in optimizer_names[1:]})
    for name in COUNTERS:
        if name in values:
            setattr(model, name, values[name])
    model.ep_info_buffer = deque(values["ep_info_buffer"], maxlen=model._stats_window_size)
    model.ep_success_buffer = deque(values["ep_success_buffer"], maxlen=model._stats_window_size)
    for name in variable_names:
        with torch.no_grad():
            getattr(model, name).copy_(tensors[name].to(get_device(model.device)))
    for owner, distribution in _sde_distributions(model):
        for name in SDE_NOISE:
            if f"sde_{owner}_{name}" in tensors:
                setattr(distribution, name, tensors[f"sde_{owner}_{name}"].to(get_device(model.device)))
        _skip_next_noise_draw(model.policy if owner == "policy" else model.policy.actor)
    buffer = getattr(model, "replay_buffer", None)
    if buffer is not None and (directory / REPLAY_FILE).is_file():
        _load_buffer(buffer, directory / REPLAY_FILE)
    saved_env = json.loads((directory / ENV_STATE_FILE).read_text())
    if saved_env["envs"] is None:
        # The envs' state was not saved: fresh episodes (seeded by the step, not replaying the run's first ones).
        env.seed(seed + int(model.num_timesteps))
        model._last_obs = None
        return str(saved_env["reason"]), values["action_noise"]
    _restore_env_state(env, saved_env)
    for name in LAST:
        if name in tensors:
            setattr(model, name, tensors[name].numpy().copy())  # a fresh, aligned array: as SB3 made it
    if "lstm_pi_hidden" in tensors:  # the episodes go on: so does the recurrent policy's memory of them
        from sb3_contrib.common.recurrent.type_aliases import RNNStates

        device = get_device(model.device)
        state = {name: tensors[name].to(device) for name in LSTM_STATES}
        model._last_lstm_states = RNNStates(pi=(state["lstm_pi_hidden"], state["lstm_pi_cell"]),
                                            vf=(state["lstm_vf_hidden"], state["lstm_vf_cell"]))
    return "", values["action_noise"]


def restore_noise(model: BaseAlgorithm, state: list[list[float]]) -> None:
    """Put the action noise back (SB3's ``learn()`` resets it, so this runs once learning has started)."""
    for noise, previous in zip(_noises(model.action_noise), state, strict=False):
        noise.noise_prev = np.asarray(previous, dtype=np.float64)


# ---------------------------------------------------------------------------------------------- pieces


def _attribute(model: BaseAlgorithm, dotted: str) -> Any:
    target: Any = model
    for part in dotted.split("."):
        target = getattr(target, part)
    return target


def _sde_distributions(model: BaseAlgorithm) -> list[tuple[str, StateDependentNoiseDistribution]]:
    """The gSDE distributions of a policy (use_sde=true): where its noise is (the actor's, for SAC, TQC, CrossQ)."""
    owners = {"policy": model.policy, "actor": getattr(model.policy, "actor", None)}
    return [(name, owner.action_dist) for name, owner in owners.items()
            if isinstance(getattr(owner, "action_dist", None), StateDependentNoiseDistribution)]


def _skip_next_noise_draw(owner: Any) -> None:
    """SB3 draws gSDE noise at a rollout's start just before the step boundary where checkpoints are written
    (on_policy_algorithm.py and off_policy_algorithm.py, ``collect_rollouts``): the checkpoint holds that noise and
    the random state after it, so the resumed run's first rollout must not draw it again."""
    def skip_once(*args: Any, **kwargs: Any) -> None:
        del owner.reset_noise  # the class's own again from here on

    owner.reset_noise = skip_once


def _number(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


def _noises(noise: Any) -> list[OrnsteinUhlenbeckActionNoise]:
    if isinstance(noise, VectorizedActionNoise):
        return [n for n in noise.noises if isinstance(n, OrnsteinUhlenbeckActionNoise)]
    return [noise] if isinstance(noise, OrnsteinUhlenbeckActionNoise) else []


def _noise_state(noise: Any) -> list[list[float]]:
    """Ornstein-Uhlenbeck noise remembers its last value; Gaussian noise draws from numpy's global RNG (saved)."""
    return [np.asarray(n.noise_prev, dtype=np.float64).tolist() for n in _noises(noise)]


def _save_buffer(buffer: Any, path: Path) -> None:
    """The rows written so far (all of them once the buffer wrapped): a 1e6-row buffer early in training is small."""
    rows = buffer.buffer_size if buffer.full else buffer.pos
    arrays = {name: getattr(buffer, name)[:rows] for name in BUFFER_ARRAYS
              if isinstance(getattr(buffer, name, None), np.ndarray)}
    with path.open("wb") as file:
        np.savez(file, pos=np.int64(buffer.pos), full=np.bool_(buffer.full), **arrays)


def _load_buffer(buffer: Any, path: Path) -> None:
    with np.load(path, allow_pickle=False) as saved:
        for name in BUFFER_ARRAYS:
            if name in saved.files:
                rows = saved[name]
                getattr(buffer, name)[:len(rows)] = rows
        buffer.pos, buffer.full = int(saved["pos"]), bool(saved["full"])


def _vec_layers(env: VecEnv) -> list[VecEnv]:
    layers = [env]
    while isinstance(layers[-1], VecEnvWrapper):
        layers.append(layers[-1].venv)
    return layers


def _env_state(env: VecEnv) -> dict[str, Any]:
    layers = _vec_layers(env)
    base = layers[-1]
    if not isinstance(base, DummyVecEnv):
        return {"envs": None, "reason": f"{type(base).__name__} envs run in other processes"}
    envs = []
    for sub_env in base.envs:
        state, reason = snapshot_env(sub_env)
        if state is None:
            return {"envs": None, "reason": reason}
        envs.append(state)
    state: dict[str, Any] = {"envs": envs, "seeds": encode_state(base._seeds), "options": encode_state(base._options)}
    for layer in layers:
        if isinstance(layer, VecNormalize):
            # The running statistics are in normalize.safetensors; these are the per-env running returns.
            state["normalize"] = {name: encode_state(getattr(layer, name, None))
                                  for name in ("returns", "old_obs", "old_reward")}
        if isinstance(layer, VecFrameStack):  # the frames stacked so far in each env's episode
            state["frame_stack"] = encode_state(layer.stacked_obs.stacked_obs)
    return state


def _restore_env_state(env: VecEnv, state: dict[str, Any]) -> None:
    layers = _vec_layers(env)
    base = layers[-1]
    assert isinstance(base, DummyVecEnv)
    for sub_env, saved in zip(base.envs, state["envs"], strict=True):
        restore_env(sub_env, saved)
    base._seeds, base._options = decode_state(state["seeds"]), decode_state(state["options"])
    for layer in layers:
        if isinstance(layer, VecNormalize) and "normalize" in state:
            for name, value in state["normalize"].items():
                setattr(layer, name, decode_state(value))
        if isinstance(layer, VecFrameStack) and "frame_stack" in state:
            layer.stacked_obs.stacked_obs = decode_state(state["frame_stack"])
