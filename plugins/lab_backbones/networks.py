"""Torch module factories: from an input shape to a features module, so any head can sit on top."""

from __future__ import annotations

import math

import torch
from torch import nn

from lab_backbones.configs import (
    CNNConfig,
    GRUConfig,
    LSTMConfig,
    MLPConfig,
    PerceptronConfig,
    RecurrentConfig,
    RNNConfig,
    TransformerConfig,
)

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU, "elu": nn.ELU,
               "leaky_relu": nn.LeakyReLU}


class Features(nn.Module):
    """A backbone: maps a batch of inputs of ``input_shape`` to ``(batch, out_features)``."""

    out_features: int


class Flatten(Features):
    """The perceptron's 'backbone': the raw inputs, flattened."""

    def __init__(self, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.out_features = math.prod(input_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def dense_layers(width: int, sizes: list[int], config: object) -> tuple[list[nn.Module], int]:
    """Linear + activation + dropout per size; returns the layers and the final width."""
    layers: list[nn.Module] = []
    for size in sizes:
        layers += [nn.Linear(width, size), ACTIVATIONS[config.activation](),  # type: ignore[attr-defined]
                   nn.Dropout(config.dropout)]  # type: ignore[attr-defined]
        width = size
    return layers, width


class MLP(Features):
    def __init__(self, input_shape: tuple[int, ...], config: MLPConfig) -> None:
        super().__init__()
        dense, self.out_features = dense_layers(math.prod(input_shape), config.hidden, config)
        self.net = nn.Sequential(nn.Flatten(), *dense)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CNN(Features):
    def __init__(self, input_shape: tuple[int, ...], config: CNNConfig) -> None:
        super().__init__()
        channels, height, width = input_shape
        layers: list[nn.Module] = []
        for size in config.channels:
            layers += [nn.Conv2d(channels, size, config.kernel, padding=config.kernel // 2),
                       ACTIVATIONS[config.activation]()]
            if min(height, width) >= 2:  # pool while there is something to pool
                layers.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
            channels = size
        dense, self.out_features = dense_layers(channels * height * width, config.hidden, config)
        self.net = nn.Sequential(*layers, nn.Flatten(), *dense)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Recurrent(Features):
    CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}

    def __init__(self, input_shape: tuple[int, ...], config: RecurrentConfig, cell: str) -> None:
        super().__init__()
        kwargs = {"nonlinearity": "tanh" if config.activation != "relu" else "relu"} if cell == "rnn" else {}
        self.rnn = self.CELLS[cell](input_shape[-1], config.hidden, num_layers=config.layers, batch_first=True,
                                    dropout=config.dropout if config.layers > 1 else 0.0,
                                    bidirectional=config.bidirectional, **kwargs)
        self.out_features = config.hidden * (2 if config.bidirectional else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.rnn(sequence(x))
        if self.rnn.bidirectional:
            half = outputs.shape[-1] // 2
            return torch.cat([outputs[:, -1, :half], outputs[:, 0, half:]], dim=-1)
        return outputs[:, -1]


class Transformer(Features):
    def __init__(self, input_shape: tuple[int, ...], config: TransformerConfig) -> None:
        super().__init__()
        steps, features = input_shape[-2], input_shape[-1]
        self.embed = nn.Linear(features, config.d_model)
        self.position = nn.Parameter(torch.zeros(1, steps, config.d_model))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(config.d_model, config.heads, config.ff, config.dropout,
                                           activation=config.activation if config.activation in ("relu", "gelu")
                                           else ACTIVATIONS[config.activation](), batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.d_model)
        self.out_features = config.d_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(sequence(x)) + self.position
        return self.norm(self.encoder(tokens)).mean(dim=1)


def sequence(x: torch.Tensor) -> torch.Tensor:
    """(batch, steps, features), accepting one-channel images (batch, 1, rows, columns) as row sequences."""
    return x.squeeze(1) if x.dim() == 4 else x


def is_sequence(shape: tuple[int, ...]) -> bool:
    return len(shape) == 2 or (len(shape) == 3 and shape[0] == 1)


def build_features(kind: str, input_shape: tuple[int, ...], config: object) -> Features:
    if kind == "perceptron":
        assert isinstance(config, PerceptronConfig)
        return Flatten(input_shape)
    if kind == "mlp":
        return MLP(input_shape, config)  # type: ignore[arg-type]
    if kind == "cnn":
        return CNN(input_shape, config)  # type: ignore[arg-type]
    if kind in Recurrent.CELLS:
        return Recurrent(input_shape, config, kind)  # type: ignore[arg-type]
    if kind == "transformer":
        return Transformer(input_shape, config)  # type: ignore[arg-type]
    raise ValueError(f"unknown backbone {kind!r}")


class _VectorAsSequence(Features):
    """Lets a sequence model read a flat vector (e.g. CartPole's 4 numbers) as a sequence of scalars."""

    def __init__(self, inner: Features) -> None:
        super().__init__()
        self.inner = inner
        self.out_features = inner.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.unsqueeze(-1))


def features(input_shape: tuple[int, ...], config: object) -> Features:
    """A backbone for an agent's observations: the ``features`` factory of every backbone plugin (the config's
    class says which backbone)."""
    kind = KIND_OF_CONFIG[type(config)]
    if kind == "cnn" and len(input_shape) != 3:
        raise ValueError(f"backbone=cnn needs image observations (channels, height, width), got {input_shape}")
    if kind in SEQUENCE_KINDS and len(input_shape) == 1:
        return _VectorAsSequence(build_features(kind, (input_shape[0], 1), config))
    return build_features(kind, input_shape, config)


SEQUENCE_KINDS = ("rnn", "lstm", "gru", "transformer")
KIND_OF_CONFIG = {PerceptronConfig: "perceptron", MLPConfig: "mlp", CNNConfig: "cnn", RNNConfig: "rnn",
                  LSTMConfig: "lstm", GRUConfig: "gru", TransformerConfig: "transformer"}
