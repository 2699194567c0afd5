"""Built-in backbones: perceptron, MLP, CNN, RNN/LSTM/GRU and Transformer, trained on ``data=`` datasets.

Registration declares names, configs, presets and compatibility rules only; torch is imported by
``lab_backbones.supervised`` when a run starts.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from lab.api import DatasetSpec, Plugin, Preset, hookimpl
from lab_backbones import configs

BACKBONES: dict[str, tuple[type, str]] = {
    "perceptron": (configs.PerceptronConfig, "Single-layer perceptron: one linear layer, sigmoid or step output"),
    "mlp": (configs.MLPConfig, "Multilayer perceptron on the flattened input"),
    "cnn": (configs.CNNConfig, "Convolutional network (conv + max pooling) for image-shaped inputs"),
    "rnn": (configs.RNNConfig, "Elman recurrent network over sequences"),
    "lstm": (configs.LSTMConfig, "Long short-term memory network over sequences"),
    "gru": (configs.GRUConfig, "Gated recurrent unit network over sequences"),
    "transformer": (configs.TransformerConfig, "Self-attention encoder with positional encoding over sequences"),
}
SEQUENCE_MODELS = {"rnn", "lstm", "gru", "transformer"}

# Per built-in dataset: training epochs and the size of its 70% train split; one evaluation per epoch.
EPOCHS = {"digits": (100, 1257), "digits_rows": (100, 1257), "moons": (15, 2800), "circles": (60, 700),
          "sine": (40, 1400), "goog": (40, 710)}
# Text: characters predicted in training, one evaluation per million (about 2 minutes for the transformer here).
TEXT_PRESETS = {"pydocs": {"steps": 16_000_000, "eval_every": 1_000_000, "lr": 2e-3}}
# Tuned by hand on the validation split (bench/backbones.py reports the test split).
PRESET_KEYS: dict[tuple[str, str], dict[str, Any]] = {
    ("perceptron", "digits"): {"lr": 0.01, "lr_schedule": "constant", "weight_decay": 1e-4},
    ("mlp", "digits"): {"hidden": [256, 128], "dropout": 0.2, "shift": 1, "steps": 200 * 1257},
    ("cnn", "digits"): {"dropout": 0.3, "shift": 1, "weight_decay": 1e-4, "steps": 150 * 1257},
    ("lstm", "digits_rows"): {"lr": 3e-3, "bidirectional": True, "shift": 1, "steps": 200 * 1257},
    ("gru", "digits_rows"): {"lr": 3e-3, "bidirectional": True, "shift": 1, "steps": 200 * 1257},
    ("transformer", "digits_rows"): {"dropout": 0.1, "shift": 1},
}


def preset_for(plugin: str, dataset: str) -> Preset | None:
    if dataset in TEXT_PRESETS and plugin in SEQUENCE_MODELS:
        return Preset(f"lab:{plugin}/{dataset}", TEXT_PRESETS[dataset], "character language model")
    if dataset not in EPOCHS:
        return None
    epochs, train = EPOCHS[dataset]
    values = {"steps": epochs * train, "eval_every": train, **PRESET_KEYS.get((plugin, dataset), {})}
    return Preset(f"lab:{plugin}/{dataset}", values, f"{epochs} epochs, one evaluation per epoch")


def check_config(plugin: str, config: Any, spec: Any) -> str | None:
    """Combinations that cannot work, refused before a run starts."""
    if not isinstance(spec, DatasetSpec):
        return None
    if spec.task == "text":
        if plugin not in SEQUENCE_MODELS:
            return f"text is modelled by sequence models ({', '.join(sorted(SEQUENCE_MODELS))}), not {plugin}"
        if getattr(config, "bidirectional", False):
            return "a language model predicts the next character: it cannot read backwards (bidirectional=false)"
        if config.loss not in ("auto", "cross_entropy"):
            return f"language models are trained with cross_entropy, not loss={config.loss}"
        return None
    shape, loss = tuple(spec.shape), config.loss
    if plugin == "cnn" and len(shape) != 3:
        return f"cnn needs image-shaped inputs (channels, height, width); {spec.name} has shape {shape}"
    if plugin in SEQUENCE_MODELS and not (len(shape) == 2 or (len(shape) == 3 and shape[0] == 1)):
        return f"{plugin} needs sequences (steps, features); {spec.name} has shape {shape}"
    if config.shift and len(shape) < 2:
        return f"shift= moves images or row sequences; {spec.name} has shape {shape}"
    if spec.task == "regression":
        if loss in ("cross_entropy", "bce"):
            return f"loss={loss} needs classes; {spec.name} is a regression dataset (use mse)"
        if getattr(config, "rule", "gradient") == "perceptron":
            return "the perceptron rule needs classes; use rule=gradient for regression"
    else:
        if loss == "bce" and spec.classes != 2:
            return f"loss=bce needs 2 classes; {spec.name} has {spec.classes} (use cross_entropy)"
        if loss == "mse" and not config.one_hot:
            return "loss=mse on classes needs one-hot targets: add one_hot=true, or use cross_entropy"
    if plugin == "perceptron":
        if config.rule == "perceptron" and config.output != "step":
            return "rule=perceptron updates on hard decisions: it needs output=step"
        if config.rule == "gradient" and config.output == "step":
            return "a step output has no gradient: use rule=perceptron or output=sigmoid"
    return None



@hookimpl
def register_plugins(register: Callable[[Plugin], None]) -> None:
    for name, (config, description) in BACKBONES.items():
        register(Plugin(
            name=name,
            kind="backbone",
            config=config,
            factory="lab_backbones.supervised:build",
            features="lab_backbones.networks:features",
            description=description,
            presets=partial(preset_for, name),
            check_config=partial(check_config, name),
            score="score",
        ))
