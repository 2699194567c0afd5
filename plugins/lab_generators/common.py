"""What every generator shares: data in the model's terms, the training loop, judging samples, files.

A generator subclass builds its networks (``build``), takes one optimisation step on a batch (``update``), and
draws samples in its own terms (``draw``); this base class turns that into lab's Model protocol: epochs of
shuffled minibatches counted in examples, metrics against the validation split at every evaluation and the
test split at the end (next to their floors and ceilings), sample pictures at every evaluation, ``generate``
for ``lab sample``, and safetensors files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lab.api import (
    BuildContext,
    SampleJudge,
    StepCallback,
    average_gradients,
    image_grid,
    load_training_state,
    load_weights,
    save_png,
    save_training_state,
    save_weights,
    scatter_plot,
    shard,
    smoke_cap,
    sync_parameters,
)

WEIGHTS_FILE = "model.safetensors"
META_FILE = "generator.json"
EVAL_SEED = 1234  # the same noise at every evaluation, so scores move only when the weights do
GRID_SAMPLES = 64


@dataclass
class EpochState:
    """Where training is inside the current epoch."""

    order: torch.Tensor
    position: int = 0
    totals: dict[str, float] = field(default_factory=dict)
    updates: int = 0


class GenerativeModel:
    target_score = None  # no "solved" threshold: the whole budget is used and the best evaluation is kept
    nets: nn.ModuleDict

    def __init__(self, context: BuildContext) -> None:
        assert context.dataset is not None and context.load_dataset is not None, "generators train on data="
        self.config = context.config
        self.plugin = context.runner.plugin
        self.device = torch.device(context.device)
        self.shape = tuple(context.dataset.shape)
        self.is_image = len(self.shape) == 3
        self.data = context.load_dataset()
        self.judge = SampleJudge(self.data, self.observe)
        train = self.observe(np.asarray(self.data.x_train, dtype=np.float32))
        self.mean = train.reshape(len(train), -1).mean(0) if not self.is_image else None
        self.std = train.reshape(len(train), -1).std(0) + 1e-6 if not self.is_image else None
        self.train_x = torch.as_tensor(self.to_model(train), device=self.device)
        self.generator = torch.Generator().manual_seed(context.runner.seed)
        self.examples = 0
        self.budget = 0
        self.epoch: EpochState | None = None
        self.log_metrics = context.log_metrics
        self.build()
        # Data-parallel (nproc=N): every rank starts from rank 0's weights and steps on averaged gradients.
        sync_parameters(self.nets)
        for optimizer in self.optimizers().values():
            average_gradients(optimizer)
        self.log_metrics({"model/parameters": sum(p.numel() for p in self.nets.parameters())}, 0)

    # ---------------------------------------------------------------------------- what subclasses provide

    def build(self) -> None:
        """Create ``self.nets`` (every trained module, saved together) and the optimisers."""
        raise NotImplementedError

    def update(self, batch: torch.Tensor) -> dict[str, float]:
        """One optimisation step on a batch in model terms; returns the losses to log."""
        raise NotImplementedError

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` samples in model terms."""
        raise NotImplementedError

    def extra_metrics(self, split: str) -> dict[str, float]:
        """Metrics of the plugin's own on a split (e.g. the VAE's -ELBO)."""
        return {}

    def score(self, metrics: dict[str, float]) -> float:
        """What the runner maximises to keep the best model: the judge's (-FD on images, -MMD^2 on points)."""
        return metrics["score"]

    # ---------------------------------------------------------------------------- data in the model's terms

    def observe(self, x: np.ndarray) -> np.ndarray:
        """The data as the model learns it, in data units (the VAE binarizes images for a Bernoulli likelihood)."""
        return x

    def to_model(self, x: np.ndarray) -> np.ndarray:
        """Images in [0, 1] to [-1, 1]; points standardised by the training split's mean and std."""
        if self.is_image:
            return (x * 2 - 1).astype(np.float32)
        return ((x - self.mean) / self.std).astype(np.float32)

    def to_data(self, x: torch.Tensor) -> np.ndarray:
        x = x.detach().float().cpu().numpy()
        if self.is_image:
            return np.clip((x + 1) / 2, 0.0, 1.0)
        return x * self.std + self.mean

    # ---------------------------------------------------------------------------- the Model protocol

    def train(self, budget: int, on_step: StepCallback) -> None:
        self.budget = budget
        batch = self.config.batch_size
        last_start = max(len(self.train_x) - batch, 0)  # whole batches only
        while self.examples < budget:
            # The epoch's order and position live on the model, so a checkpoint taken mid-epoch resumes exactly.
            if self.epoch is None:
                self.epoch = EpochState(torch.randperm(len(self.train_x), generator=self.generator))
            epoch = self.epoch
            order = epoch.order.to(self.device)
            while epoch.position <= last_start:
                index = order[epoch.position:epoch.position + batch]
                losses = self.update(self.train_x[shard(index)])  # this rank's share of the global batch
                for key, value in losses.items():
                    epoch.totals[key] = epoch.totals.get(key, 0.0) + value
                epoch.updates += 1
                epoch.position += batch
                self.examples += len(index)
                if not on_step(self.examples):
                    return
                if self.examples >= budget:
                    break
            self.log_metrics({f"train/{key}": value / epoch.updates for key, value in epoch.totals.items()},
                             self.examples)
            self.epoch = None

    # ---------------------------------------------------------------------------- exact resumption

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimiser, by name (their state is part of a checkpoint)."""
        return {name: value for name, value in vars(self).items() if isinstance(value, torch.optim.Optimizer)}

    def extra_state(self) -> dict[str, Any]:
        """Counters of a subclass that training depends on (JSON values)."""
        return {}

    def restore_extra_state(self, values: dict[str, Any]) -> None:
        pass

    def checkpoint(self, directory: Path) -> None:
        """Weights plus what exact resumption needs: optimisers, RNGs, the epoch's order and position."""
        self.save(directory)
        epoch = self.epoch
        save_training_state(
            directory, optimizers=self.optimizers(), generators={"data": self.generator},
            tensors={"order": epoch.order if epoch else None},
            values={"examples": self.examples, "budget": self.budget, "extra": self.extra_state(),
                    "epoch": None if epoch is None else {"position": epoch.position, "totals": epoch.totals,
                                                         "updates": epoch.updates}})

    def restore(self, directory: Path) -> None:
        self.load(directory)
        values, tensors = load_training_state(directory, optimizers=self.optimizers(),
                                              generators={"data": self.generator})
        self.examples, self.budget = int(values["examples"]), int(values["budget"])
        self.restore_extra_state(values["extra"])
        saved = values["epoch"]
        self.epoch = None if saved is None else EpochState(tensors["order"], saved["position"], saved["totals"],
                                                           saved["updates"])

    def progress(self) -> float:
        """The share of the budget trained so far (for warm-ups and schedules)."""
        return min(self.examples / self.budget, 1.0) if self.budget else 1.0

    def evaluate(self, episodes: int) -> dict[str, float]:
        """Sample-quality metrics against the validation split (``episodes`` does not apply: ``eval_samples``
        samples drawn with one fixed seed are judged)."""
        metrics = self.judge.metrics(self.generate(smoke_cap(self.config.eval_samples), EVAL_SEED), "val")
        metrics.update(self.extra_metrics("val"))
        metrics["score"] = self.score(metrics)
        return metrics

    def test(self) -> dict[str, float]:
        """The best model's metrics on the test split, next to that split's floor and ceiling."""
        metrics = self.judge.metrics(self.generate(smoke_cap(self.config.eval_samples), EVAL_SEED), "test",
                                    baselines=True)
        metrics.update(self.extra_metrics("test"))
        metrics["score"] = self.score(metrics)
        return metrics

    @torch.no_grad()
    def generate(self, n: int, seed: int) -> np.ndarray:
        """``n`` samples in data units: images (n, c, h, w) in [0, 1] or points (n, d); same seed, same samples."""
        generator = torch.Generator(device=self.device).manual_seed(seed)
        self.nets.eval()
        try:
            chunks = [self.to_data(self.draw(min(1000, n - start), generator)) for start in range(0, n, 1000)]
        finally:
            self.nets.train()
        return np.concatenate(chunks).reshape(n, *self.shape)

    def pyfunc_input(self) -> dict[str, list[int]]:
        """A table of sample counts and seeds."""
        return {"n": [4], "seed": [0]}

    def pyfunc_predict(self, inputs: Any) -> np.ndarray:
        """For each row, ``n`` samples drawn with ``seed`` (images (n, c, h, w) in [0, 1], or points), stacked."""
        rows = zip(list(inputs["n"]), list(inputs["seed"]), strict=True)
        return np.concatenate([self.generate(int(n), int(seed)) for n, seed in rows])

    def reference_points(self) -> np.ndarray:
        """Training points to draw samples over (2-D data)."""
        return np.asarray(self.data.x_train)

    def images(self) -> dict[str, Any]:
        samples = self.generate(GRID_SAMPLES if self.is_image else 1000, seed=0)
        if self.is_image:
            return {"samples": image_grid(samples)}
        return {"samples": scatter_plot(samples, self.reference_points(), title=f"{self.plugin} on {self.data.name}")}

    def artifacts(self, directory: Path) -> list[Path]:
        return [save_png(picture, directory / f"{key}.png") for key, picture in self.images().items()]

    def save(self, directory: Path) -> None:
        save_weights(directory, self.nets, weights_file=WEIGHTS_FILE, settings=self.meta(), settings_file=META_FILE)

    def meta(self, **extra: Any) -> dict[str, Any]:
        """What the saved weights are of, written beside them (read by people, not by ``load``)."""
        return {"plugin": self.plugin, "dataset": self.data.name, "shape": list(self.shape),
                "examples": self.examples, **extra}

    def load(self, directory: Path) -> None:
        load_weights(directory, self.nets, weights_file=WEIGHTS_FILE, device=self.device)


# -------------------------------------------------------------------------------------------- building blocks


def mlp(sizes: list[int], activation: Callable[[], nn.Module] = nn.SiLU, dropout: float = 0.0) -> nn.Sequential:
    """Linear layers of ``sizes`` with ``activation`` (and dropout) between them, none after the last."""
    layers: list[nn.Module] = []
    for i, (inputs, outputs) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(inputs, outputs))
        if i < len(sizes) - 2:
            layers.append(activation())
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def conv_encoder(shape: tuple[int, ...], channels: list[int], outputs: int, *, spectral: bool = False,
                 activation: Callable[[], nn.Module] = nn.SiLU) -> nn.Sequential:
    """Image (c, h, w) -> ``outputs`` values: a 3x3 conv to ``channels[0]``, then one stride-2 4x4 conv per further
    entry of ``channels`` (halving the size), then a linear layer."""
    wrap = nn.utils.parametrizations.spectral_norm if spectral else (lambda layer: layer)
    layers: list[nn.Module] = [wrap(nn.Conv2d(shape[0], channels[0], 3, padding=1)), activation()]
    for inputs, outputs_ in zip(channels[:-1], channels[1:], strict=True):
        layers += [wrap(nn.Conv2d(inputs, outputs_, 4, stride=2, padding=1)), activation()]
    size = shape[1] // 2 ** (len(channels) - 1)
    layers += [nn.Flatten(), wrap(nn.Linear(channels[-1] * size * size, outputs))]
    return nn.Sequential(*layers)


def conv_decoder(inputs: int, shape: tuple[int, ...], channels: list[int], *, batchnorm: bool = False,
                 activation: Callable[[], nn.Module] = nn.SiLU) -> nn.Sequential:
    """``inputs`` values -> image (c, h, w): the mirror of :func:`conv_encoder` (transposed stride-2 convs)."""
    size = shape[1] // 2 ** (len(channels) - 1)
    norm = (lambda c: nn.BatchNorm2d(c)) if batchnorm else (lambda c: nn.Identity())
    layers: list[nn.Module] = [nn.Linear(inputs, channels[-1] * size * size),
                               nn.Unflatten(1, (channels[-1], size, size)), norm(channels[-1]), activation()]
    for inputs_, outputs in zip(channels[:0:-1], channels[-2::-1], strict=True):
        layers += [nn.ConvTranspose2d(inputs_, outputs, 4, stride=2, padding=1), norm(outputs), activation()]
    layers.append(nn.Conv2d(channels[0], shape[0], 3, padding=1))
    return nn.Sequential(*layers)
