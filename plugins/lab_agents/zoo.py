"""The RL Baselines3 Zoo's hyperparameter files as lab presets: read from the installed rl-zoo3 package at run
time (``rl_zoo3/hyperparams/<algo>.yml``, never copied), and translated key by key into lab's keys.

The Zoo evaluates some values as Python (``policy_kwargs: "dict(net_arch=[64, 64], activation_fn=nn.ReLU)"``,
``normalize: "dict(norm_obs=False)"``). lab reads them with :mod:`ast` instead, accepting only literals,
``dict(...)`` calls and the names of activation and optimizer classes: nothing in a file is executed. A Zoo key
or value lab cannot translate refuses the preset with the key named (:class:`Untranslatable`), never silently
drops it.

Entries are chosen as the Zoo chooses them (``rl_zoo3/exp_manager.py``, ``read_hyperparameters``): the env's
own entry, else ``atari`` for an Atari game, else ``default``.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.metadata
import importlib.util
import typing
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ZOO_PACKAGE = "rl_zoo3"
ATARI_ENTRY = "atari"
DEFAULT_ENTRY = "default"

# Zoo keys that are lab keys of the same name and meaning (when the agent's config has the key).
SAME_NAME = {
    "gamma", "batch_size", "n_envs", "ent_coef", "learning_starts", "n_steps", "gae_lambda", "buffer_size",
    "gradient_steps", "n_epochs", "use_sde", "tau", "vf_coef", "max_grad_norm", "n_delta", "n_top",
    "n_critic_updates", "sde_sample_freq", "cg_damping", "alive_bonus_offset", "sub_sampling_factor",
    "cg_max_steps", "zero_policy", "exploration_fraction", "use_rms_prop", "normalize_advantage", "policy_delay",
    "target_update_interval", "exploration_final_eps", "exploration_initial_eps", "frame_stack",
    "use_sde_at_warmup", "top_quantiles_to_drop_per_net", "target_kl", "delta_std", "n_eval_episodes",
    "line_search_shrinking_factor", "line_search_max_iter", "target_policy_noise", "target_noise_clip",
}
# policy_kwargs entries that are lab keys of the same name
POLICY_SAME_NAME = {"ortho_init", "log_std_init", "use_expln", "n_quantiles", "n_critics", "lstm_hidden_size",
                    "enable_critic_lstm", "n_lstm_layers", "shared_lstm"}
# torch.nn activation classes -> lab's activation names
ACTIVATIONS = {"Tanh": "tanh", "ReLU": "relu", "ELU": "elu", "LeakyReLU": "leaky_relu", "GELU": "gelu",
               "SiLU": "silu"}
NOISES = {"normal": "normal", "ornstein-uhlenbeck": "ornstein_uhlenbeck"}
SCHEDULED = {"learning_rate": ("lr", "lr_schedule"), "clip_range": ("clip_range", "clip_schedule")}
RMSPROP_TF_EPS = 1e-5  # what lab's rmsprop_tf_like=true uses, as the Zoo's Atari A2C preset does
# Keys only the agents whose SB3 policies put their heads directly on the NatureCNN have (DQN and QR-DQN's
# QNetwork, the actor-critic policies of PPO, A2C, TRPO and recurrent PPO): `net_arch: []` after a CNN.
CNN_HEADS = {"exploration_fraction", "gae_lambda"}
POLICIES = {"MlpPolicy", "CnnPolicy", "MlpLstmPolicy", "CnnLstmPolicy", "LinearPolicy"}


class Untranslatable(ValueError):
    """A Zoo key (or value) lab has no equivalent for: the preset is refused with this reason."""


@dataclasses.dataclass(frozen=True)
class Symbol:
    """A name in a Zoo expression (``nn.ReLU``, ``RMSpropTFLike``), kept as text: lab maps the names it knows."""

    name: str

    @property
    def last(self) -> str:
        return self.name.rsplit(".", 1)[-1]


# ---------------------------------------------------------------------------------------------- the files


def hyperparams_folder() -> Path:
    """Where the installed rl-zoo3 keeps its files, found without importing rl_zoo3 (which patches gymnasium's
    TimeLimit when imported)."""
    spec = importlib.util.find_spec(ZOO_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("rl-zoo3 is not installed (a dependency of lablearn: reinstall lab)")
    return Path(next(iter(spec.submodule_search_locations))) / "hyperparams"


def zoo_version() -> str:
    return importlib.metadata.version("rl-zoo3")


@cache
def entries(algo: str) -> Mapping[str, Mapping[str, Any]]:
    """Every entry of the Zoo's file for ``algo`` ({} when the Zoo has no file for it)."""
    path = hyperparams_folder() / f"{algo}.yml"
    if not path.is_file():
        return {}
    with path.open() as file:
        return yaml.safe_load(file) or {}


def entry_name(algo: str, env_id: str, *, atari: bool) -> str | None:
    """Which entry the Zoo uses for ``env_id``: its own, ``atari``, ``default``, or None."""
    available = entries(algo)
    if env_id in available:
        return env_id
    if atari and ATARI_ENTRY in available:
        return ATARI_ENTRY
    return DEFAULT_ENTRY if DEFAULT_ENTRY in available else None


def all_entries() -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(algo, entry name, entry) for every entry of every file the Zoo ships."""
    for path in sorted(hyperparams_folder().glob("*.yml")):
        for name, entry in entries(path.stem).items():
            yield path.stem, name, entry


# ---------------------------------------------------------------------------------------------- translating


def translate(entry: Mapping[str, Any], config: type) -> dict[str, Any]:
    """A Zoo entry as lab keys of the agent config class ``config``; raises :class:`Untranslatable` naming the
    first key lab cannot translate."""
    fields = {field.name: hint for field, hint in _fields(config)}
    values: dict[str, Any] = {}
    if "noise_type" not in entry and "action_noise" in fields:
        values["action_noise"] = "none"  # the Zoo adds noise only when its entry asks for it
    for key, value in entry.items():
        values.update(_translate_key(key, value, entry, fields))
    if str(entry.get("policy", "")).startswith("Cnn") and "net_arch" not in values and fields.keys() & CNN_HEADS:
        # SB3's own default after its NatureCNN, which the Zoo's entry relies on: the heads sit on its features.
        values["net_arch"] = []
    return values


def _fields(config: type) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(config)
    return [(field, hints[field.name]) for field in dataclasses.fields(config)]


def _translate_key(key: str, value: Any, entry: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    def has(*names: str) -> None:
        missing = [name for name in names if name not in fields]
        if missing:
            raise Untranslatable(f"{key}: this agent has no {', '.join(missing)} key")

    if key == "n_timesteps":
        return {"steps": int(float(value))}
    if key == "policy":
        return _policy(value, fields)
    if key in SCHEDULED:
        lab_key, schedule_key = SCHEDULED[key]
        has(lab_key, schedule_key)
        initial, schedule = _schedule(key, value)
        return {lab_key: initial, schedule_key: schedule}
    if key == "policy_kwargs":
        return _policy_kwargs(_expression(key, value), fields)
    if key == "normalize":
        return _normalize(value, fields)
    if key == "noise_type":
        has("action_noise", "noise_std")
        if str(value).strip() not in NOISES:
            raise Untranslatable(f"noise_type={value!r}: valid: {', '.join(NOISES)}")
        return {"action_noise": NOISES[str(value).strip()]}
    if key == "noise_std":
        has("noise_std")
        return {"noise_std": value}
    if key == "env_wrapper":
        has("env_wrapper")
        return {"env_wrapper": value if isinstance(value, list) else [value]}
    if key == "env_kwargs":
        has("env_kwargs")
        kwargs = _expression(key, value) if isinstance(value, str) else value
        if not isinstance(kwargs, dict):
            raise Untranslatable(f"env_kwargs={value!r}: expected a mapping")
        return {"env_kwargs": kwargs}
    if key == "train_freq":
        return {"train_freq": _train_freq(value)}
    if key == "optimize_memory_usage":
        if value:  # SB3's memory-saving buffer keeps no next observations: lab's checkpoints need them
            raise Untranslatable("optimize_memory_usage=True: lab's replay buffer checkpoints need SB3's plain "
                                 "buffer")
        return {}
    if key == "ent_coef" and key in fields and fields[key] is str:
        return {"ent_coef": str(value)}
    if key in SAME_NAME and key in fields:
        return {key: value}
    raise Untranslatable(f"{key}: no lab key does what the Zoo's {key!r} does for this agent")


def _policy(value: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
    if value not in POLICIES:
        raise Untranslatable(f"policy={value!r}: lab's agents take {', '.join(sorted(POLICIES))} (no Dict "
                             "observations)")
    if "policy" in fields:  # ARS: linear or MLP
        if value not in ("LinearPolicy", "MlpPolicy"):
            raise Untranslatable(f"policy={value!r}: ARS takes LinearPolicy or MlpPolicy")
        return {"policy": "linear" if value == "LinearPolicy" else "mlp"}
    if value == "LinearPolicy" or ("Lstm" in value and "lstm_hidden_size" not in fields):
        raise Untranslatable(f"policy={value!r} does not fit this agent")
    # lab picks the CNN for image observations itself, as SB3's CnnPolicy would. A recurrent agent's MlpPolicy
    # (the Zoo's ppo_lstm `default` entry, which RecurrentPPO itself would refuse) is its MlpLstmPolicy.
    return {}


def _schedule(key: str, value: Any) -> tuple[float, str]:
    if isinstance(value, str):
        kind, _, initial = value.partition("_")
        if kind != "lin":
            raise Untranslatable(f"{key}={value!r}: lab reads lin_<initial value> schedules")
        return float(initial), "linear"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value), "constant"
    raise Untranslatable(f"{key}={value!r}: expected a number or lin_<initial value>")


def _train_freq(value: Any) -> int:
    if isinstance(value, list) and len(value) == 2 and value[1] == "step":
        value = value[0]
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise Untranslatable(f"train_freq={value!r}: lab trains every N steps (not per episode)")


def _normalize(value: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"normalize": value}
    kwargs = _expression("normalize", value) if isinstance(value, str) else value
    if not isinstance(kwargs, dict):
        raise Untranslatable(f"normalize={value!r}: expected true, false or a mapping of VecNormalize's arguments")
    unknown = sorted(set(kwargs) - {"norm_obs", "norm_reward", "gamma"})
    if unknown:
        raise Untranslatable(f"normalize: VecNormalize argument(s) {', '.join(unknown)} have no lab key "
                             "(lab has norm_obs, norm_reward)")
    translated = {"normalize": True, **{key: kwargs[key] for key in ("norm_obs", "norm_reward") if key in kwargs}}
    if "gamma" in kwargs:
        translated["gamma"] = kwargs["gamma"]
    return translated


def _policy_kwargs(kwargs: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(kwargs, dict):
        raise Untranslatable(f"policy_kwargs={kwargs!r}: expected dict(...)")
    translated: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key == "net_arch":
            translated.update(_net_arch(value, fields))
        elif key == "activation_fn":
            name = value.last if isinstance(value, Symbol) else None
            if name not in ACTIVATIONS:
                raise Untranslatable(f"policy_kwargs.activation_fn={value}: valid: nn.{', nn.'.join(ACTIVATIONS)}")
            translated["activation"] = ACTIVATIONS[name]
        elif key == "optimizer_class":
            if not (isinstance(value, Symbol) and value.last == "RMSpropTFLike" and "rmsprop_tf_like" in fields):
                raise Untranslatable(f"policy_kwargs.optimizer_class={value}: lab has rmsprop_tf_like=true (A2C) "
                                     "and each algorithm's own optimizer")
            translated["rmsprop_tf_like"] = True
        elif key == "optimizer_kwargs":
            if value != {"eps": RMSPROP_TF_EPS} or kwargs.get("optimizer_class") is None:
                raise Untranslatable(f"policy_kwargs.optimizer_kwargs={value}: lab's rmsprop_tf_like uses "
                                     f"eps={RMSPROP_TF_EPS}, other optimizer arguments have no lab key")
        elif key in POLICY_SAME_NAME and key in fields:
            translated[key] = value
        else:
            raise Untranslatable(f"policy_kwargs.{key}: no lab key for it on this agent")
    return translated


def _net_arch(value: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(value, list):
        # The same layers for the critics: set explicitly, as an agent's own critic default may differ (CrossQ).
        return {"net_arch": value, **({"critic_arch": value} if "critic_arch" in fields else {})}
    if isinstance(value, dict) and set(value) <= {"pi", "vf", "qf"} and "pi" in value:
        critic = value.get("vf", value.get("qf", value["pi"]))
        if critic != value["pi"] and "critic_arch" not in fields:
            raise Untranslatable(f"policy_kwargs.net_arch={value}: this agent has no separate critic_arch")
        return {"net_arch": value["pi"], **({"critic_arch": critic} if "critic_arch" in fields else {})}
    raise Untranslatable(f"policy_kwargs.net_arch={value!r}: expected a list or dict(pi=[...], vf|qf=[...])")


# ---------------------------------------------------------------------------------------------- expressions


def _expression(key: str, text: Any) -> Any:
    """A Zoo value written as Python, read without running it."""
    if not isinstance(text, str):
        return text
    try:
        tree = ast.parse(text.strip(), mode="eval")
        return _literal(tree.body)
    except (SyntaxError, Untranslatable) as e:
        raise Untranslatable(f"{key}={' '.join(text.split())!r}: {e}") from None


def _literal(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _literal(node.operand)
        if isinstance(operand, int | float) and not isinstance(operand, bool):
            return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.List | ast.Tuple):
        return [_literal(item) for item in node.elts]
    if isinstance(node, ast.Dict) and all(key is not None for key in node.keys):
        return {_literal(key): _literal(value) for key, value in zip(node.keys, node.values, strict=True)}
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        return {keyword.arg: _literal(keyword.value) for keyword in node.keywords if keyword.arg}
    if isinstance(node, ast.Name | ast.Attribute):
        return Symbol(ast.unparse(node))
    raise Untranslatable(f"{ast.unparse(node)!r} is not a literal lab reads")
