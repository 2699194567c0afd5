"""Config dataclasses of the backbones: the textbook knobs, one documented field each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lab.api import option, positive_sizes, unit_fraction

Activation = Literal["relu", "tanh", "sigmoid", "gelu", "elu", "leaky_relu"]
Loss = Literal["auto", "cross_entropy", "bce", "mse"]
Optimizer = Literal["gd", "sgd", "adam", "rmsprop"]


@dataclass
class TrainConfig:
    """Keys every backbone has: how it is trained."""

    lr: float = option(1e-3, "Learning rate (the initial one with lr_schedule=cosine).", min=0.0)
    lr_schedule: Literal["constant", "cosine"] = option("cosine", "constant, or cosine decay of lr to 0 over the "
                                                                  "budget.")
    optimizer: Optimizer = option("adam", "gd (full-batch gradient descent), sgd, adam or rmsprop.")
    momentum: float = option(0.0, "Momentum of sgd and gd.", min=0.0)
    batch_size: int = option(64, "Examples per update (gd uses the whole training split).", min=1)
    loss: Loss = option("auto", "auto (cross_entropy for classes, mse for regression), cross_entropy, bce, mse.")
    one_hot: bool = option(False, "Train mse on one-hot class targets (needed for loss=mse on classes).")
    weight_decay: float = option(0.0, "L2 weight decay.", min=0.0)
    dropout: float = option(0.0, "Dropout probability in the backbone.", check=unit_fraction)
    activation: Activation = option("relu", "Activation of the hidden layers (softmax belongs to the output).")
    shift: int = option(0, "Augmentation: shift training images (or row sequences) by up to this many pixels.",
                        min=0)


@dataclass
class PerceptronConfig(TrainConfig):
    """One linear layer from inputs to outputs."""

    rule: Literal["gradient", "perceptron"] = option(
        "gradient", "gradient: train the linear layer with the loss; perceptron: Rosenblatt's mistake-driven rule.")
    output: Literal["sigmoid", "step"] = option(
        "sigmoid", "Output unit: sigmoid (probabilities) or step (the perceptron rule's hard threshold).")


@dataclass
class MLPConfig(TrainConfig):
    """A multilayer perceptron on the flattened input."""

    hidden: list[int] = option([128, 64], "Hidden layer sizes.", check=positive_sizes)


@dataclass
class CNNConfig(TrainConfig):
    """Convolutions with max pooling, then fully connected layers."""

    channels: list[int] = option([32, 64], "Channels of each conv layer (each followed by 2x2 max pooling).",
                                 check=positive_sizes)
    kernel: int = option(3, "Convolution kernel size (padded to keep the size).", min=1)
    hidden: list[int] = option([128], "Fully connected layers after the convolutions.", check=positive_sizes)


@dataclass
class RecurrentConfig(TrainConfig):
    """A recurrent network over the sequence; its last hidden state are the features."""

    hidden: int = option(128, "Hidden state size.", min=1)
    layers: int = option(1, "Stacked recurrent layers.", min=1)
    bidirectional: bool = option(False, "Also read the sequence backwards (not for text).")
    context: int = option(128, "Characters of context per training window (text datasets).", min=2)


@dataclass
class RNNConfig(RecurrentConfig):
    """Elman RNN."""


@dataclass
class LSTMConfig(RecurrentConfig):
    """Long short-term memory."""


@dataclass
class GRUConfig(RecurrentConfig):
    """Gated recurrent unit."""


@dataclass
class TransformerConfig(TrainConfig):
    """A self-attention encoder with learned positional encodings; mean-pooled features."""

    activation: Activation = option("gelu", "Activation of the feed-forward layers.")
    d_model: int = option(64, "Width of the token embeddings.", min=1)
    heads: int = option(4, "Attention heads (must divide d_model).", min=1)
    layers: int = option(2, "Encoder layers.", min=1)
    ff: int = option(128, "Hidden size of each feed-forward block.", min=1)
    context: int = option(128, "Characters of context per training window (text datasets, causal).", min=2)

    def __post_init__(self) -> None:
        if self.d_model % self.heads:
            raise ValueError(f"heads={self.heads} must divide d_model={self.d_model}")
