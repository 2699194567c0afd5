"""Supervised training of any backbone on a classification or regression dataset (lab's Model protocol).

A backbone (``networks.py``) turns inputs into features; a linear head turns features into class logits or a
value. Training runs over shuffled minibatches (full batch for ``optimizer=gd``); the step count is examples
seen, so budgets read the same whatever the batch size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lab.api import (
    BuildContext,
    StepCallback,
    load_training_state,
    load_weights,
    save_training_state,
    save_weights,
)
from lab_backbones.language import LanguageModel
from lab_backbones.networks import build_features

WEIGHTS_FILE = "model.safetensors"
META_FILE = "backbone.json"


def build(context: BuildContext) -> SupervisedModel | LanguageModel:
    """The plugin factory of every backbone: a language model on text, else a classifier or regressor."""
    if context.dataset is not None and context.dataset.task == "text":
        return LanguageModel(context)
    return SupervisedModel(context)


def resolve_loss(config: object, task: str, classes: int | None, plugin: str) -> str:
    """The loss actually used: ``auto`` means cross-entropy for classes (one-vs-rest sigmoid units for the
    perceptron, its classic output) and mse for regression."""
    loss = config.loss  # type: ignore[attr-defined]
    if loss != "auto":
        return loss
    if task == "regression":
        return "mse"
    return "ovr_bce" if plugin == "perceptron" else "cross_entropy"


@dataclass
class EpochState:
    """Where training is inside the current epoch."""

    order: torch.Tensor
    position: int = 0
    losses: list[float] = field(default_factory=list)
    correct: int = 0
    seen: int = 0


class SupervisedModel:
    target_score = None  # supervised tasks have no "solved" threshold: the whole budget is used

    def __init__(self, context: BuildContext) -> None:
        assert context.dataset is not None and context.load_dataset is not None, "backbones train on data="
        self.config = context.config
        self.plugin = context.runner.plugin
        self.device = torch.device(context.device)
        self.spec = context.dataset
        self.classes = self.spec.classes if self.spec.task == "classification" else None
        self.loss_name = resolve_loss(self.config, self.spec.task, self.classes, self.plugin)
        self.perceptron_rule = getattr(self.config, "rule", "gradient") == "perceptron"
        data = context.load_dataset()
        self.splits = {name: self._tensors(getattr(data, f"x_{name}"), getattr(data, f"y_{name}"))
                       for name in ("train", "val", "test")}

        features = build_features(self.plugin, tuple(self.spec.shape), self.config)
        outputs = 1 if self.classes is None or self.loss_name == "bce" else self.classes
        self.net = nn.Sequential(features, nn.Linear(features.out_features, outputs)).to(self.device)
        self.optimizer = None if self.perceptron_rule else self._optimizer()
        self.generator = torch.Generator().manual_seed(context.runner.seed)
        self.examples = 0
        self.epoch: EpochState | None = None
        self.log_metrics = context.log_metrics
        parameters = sum(p.numel() for p in self.net.parameters())
        self.log_metrics({"model/parameters": parameters}, 0)

    def _tensors(self, x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        target = torch.as_tensor(y, dtype=torch.long if self.classes else torch.float32)
        return torch.as_tensor(x, dtype=torch.float32).to(self.device), target.to(self.device)

    def _optimizer(self) -> torch.optim.Optimizer:
        config, params = self.config, self.net.parameters()
        if config.optimizer in ("gd", "sgd"):
            return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
        if config.optimizer == "rmsprop":
            return torch.optim.RMSprop(params, lr=config.lr, weight_decay=config.weight_decay)
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)

    # ------------------------------------------------------------------------------------ losses

    def _loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.loss_name == "cross_entropy":
            return nn.functional.cross_entropy(output, y)
        if self.loss_name == "bce":
            return nn.functional.binary_cross_entropy_with_logits(output.squeeze(1), y.float())
        if self.loss_name == "ovr_bce":
            return nn.functional.binary_cross_entropy_with_logits(output, self._one_hot(y))
        target = self._one_hot(y) if self.classes else y.unsqueeze(1)
        return nn.functional.mse_loss(output, target)

    def _one_hot(self, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(y, self.classes).float()

    def _predict_classes(self, output: torch.Tensor) -> torch.Tensor:
        if self.loss_name == "bce":
            return (output.squeeze(1) > 0).long()
        return output.argmax(dim=1)

    # ------------------------------------------------------------------------------------ the protocol

    def train(self, budget: int, on_step: StepCallback) -> None:
        x, y = self.splits["train"]
        batch = len(x) if self.config.optimizer == "gd" else self.config.batch_size
        self.net.train()
        while self.examples < budget:
            # The epoch's order and position live on the model, so a checkpoint taken mid-epoch resumes exactly.
            if self.epoch is None:
                self.epoch = EpochState(torch.randperm(len(x), generator=self.generator))
            epoch = self.epoch
            order = epoch.order.to(self.device)
            while epoch.position < len(x):
                index = order[epoch.position:epoch.position + batch][: budget - self.examples]
                self._schedule(budget)
                loss, right = self._update(x[index], y[index])
                epoch.losses.append(loss)
                epoch.correct, epoch.seen = epoch.correct + right, epoch.seen + len(index)
                epoch.position += batch
                self.examples += len(index)
                if not on_step(self.examples):
                    return
                if self.examples >= budget:
                    break
            metrics = {"train/loss": float(np.mean(epoch.losses))}
            if self.classes:
                metrics["train/accuracy"] = epoch.correct / epoch.seen  # on the (augmented) batches as trained
            self.log_metrics(metrics, self.examples)
            self.epoch = None

    def _schedule(self, budget: int) -> None:
        if self.optimizer is None or self.config.lr_schedule == "constant":
            return
        lr = self.config.lr * 0.5 * (1 + math.cos(math.pi * min(self.examples / budget, 1.0)))
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _update(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
        """One step on a batch: (loss, correctly classified examples before the step)."""
        if self.perceptron_rule:
            return self._perceptron_update(x, y)
        if getattr(self.config, "shift", 0):
            x = self._shifted(x, self.config.shift)
        output = self.net(x)
        loss = self._loss(output, y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        right = int((self._predict_classes(output.detach()) == y).sum()) if self.classes else 0
        return float(loss.detach()), right

    def _shifted(self, images: torch.Tensor, most: int) -> torch.Tensor:
        """Each image moved by a random offset of up to ``most`` pixels in x and y, zeros coming in."""
        planes = images.unsqueeze(1) if images.dim() == 3 else images  # (batch, rows, columns) sequences too
        padded = nn.functional.pad(planes, (most, most, most, most))
        height, width = planes.shape[-2:]
        offsets = torch.randint(0, 2 * most + 1, (len(images), 2), generator=self.generator).tolist()
        moved = torch.stack([padded[i, :, dy:dy + height, dx:dx + width] for i, (dy, dx) in enumerate(offsets)])
        return moved.view_as(images)

    @torch.no_grad()
    def _perceptron_update(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
        """Rosenblatt's rule, multiclass: on a mistake, move the true class's weights towards x and the
        predicted class's away from it. Returns (error rate, correct examples) of the batch before the update."""
        linear: nn.Linear = self.net[1]
        flat = self.net[0](x)
        predicted = linear(flat).argmax(dim=1)
        wrong = predicted != y
        if wrong.any():
            step = self.config.lr
            linear.weight.index_add_(0, y[wrong], step * flat[wrong])
            linear.weight.index_add_(0, predicted[wrong], -step * flat[wrong])
            linear.bias.index_add_(0, y[wrong], torch.full((int(wrong.sum()),), step))
            linear.bias.index_add_(0, predicted[wrong], torch.full((int(wrong.sum()),), -step))
        return float(wrong.float().mean()), int((~wrong).sum())

    @torch.no_grad()
    def metrics(self, split: str) -> dict[str, float]:
        x, y = self.splits[split]
        self.net.eval()
        output = self.net(x)
        self.net.train()
        if self.classes:
            accuracy = float((self._predict_classes(output) == y).float().mean())
            result = {"score": accuracy, "accuracy": accuracy}
            if not self.perceptron_rule:
                result["loss"] = float(self._loss(output, y))
            return result
        error = output.squeeze(1) - y
        mse = float((error**2).mean())
        return {"score": -mse, "mse": mse, "mae": float(error.abs().mean())}

    def evaluate(self, episodes: int) -> dict[str, float]:
        """Validation-split metrics (``episodes`` does not apply to a fixed split)."""
        return self.metrics("val")

    def test(self) -> dict[str, float]:
        result = {key: value for key, value in self.metrics("test").items() if key != "score"}
        if not self.classes:  # what predicting the training mean would score: the bar a regressor must clear
            mean = self.splits["train"][1].mean()
            result["mean_baseline_mse"] = float(((self.splits["test"][1] - mean) ** 2).mean())
        return result

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class indices or values for a batch of inputs."""
        with torch.no_grad():
            self.net.eval()
            output = self.net(torch.as_tensor(x, dtype=torch.float32, device=self.device))
            self.net.train()
        return (self._predict_classes(output) if self.classes else output.squeeze(1)).cpu().numpy()

    # ------------------------------------------------------------------------------------ MLflow pyfunc

    def pyfunc_input(self) -> np.ndarray:
        """Four validation inputs."""
        return self.splits["val"][0][:4].cpu().numpy()

    def pyfunc_predict(self, inputs: Any) -> np.ndarray:
        """Class probabilities (batch, classes) for a classifier, predicted values (batch,) for a regressor."""
        x = torch.as_tensor(np.asarray(inputs, dtype=np.float32), device=self.device).reshape(-1, *self.spec.shape)
        with torch.no_grad():
            self.net.eval()
            output = self.net(x)
            self.net.train()
        if not self.classes:
            return output.squeeze(1).cpu().numpy()
        if self.loss_name == "bce":
            positive = torch.sigmoid(output.squeeze(1))
            return torch.stack([1 - positive, positive], dim=1).cpu().numpy()
        if self.loss_name == "cross_entropy":
            return torch.softmax(output, dim=1).cpu().numpy()
        # One-vs-rest sigmoids or squared error on one-hot targets: scores per class, normalised to sum to 1.
        scores = torch.sigmoid(output) if self.loss_name == "ovr_bce" else output.clamp(min=0) + 1e-6
        return (scores / scores.sum(dim=1, keepdim=True)).cpu().numpy()

    def save(self, directory: Path) -> None:
        meta = {"plugin": self.plugin, "dataset": self.spec.name, "input_shape": list(self.spec.shape),
                "classes": self.classes, "loss": self.loss_name, "examples": self.examples}
        save_weights(directory, self.net, weights_file=WEIGHTS_FILE, settings=meta, settings_file=META_FILE)

    def load(self, directory: Path) -> None:
        load_weights(directory, self.net, weights_file=WEIGHTS_FILE, device=self.device)

    def checkpoint(self, directory: Path) -> None:
        """Weights plus everything exact resumption needs: optimizer, RNGs, the epoch's order and position."""
        self.save(directory)
        epoch = self.epoch
        save_training_state(
            directory, optimizers={"optimizer": self.optimizer} if self.optimizer else {},
            generators={"data": self.generator}, tensors={"order": epoch.order if epoch else None},
            values={"examples": self.examples, "epoch": None if epoch is None else
                    {"position": epoch.position, "losses": epoch.losses, "correct": epoch.correct,
                     "seen": epoch.seen}})

    def restore(self, directory: Path) -> None:
        self.load(directory)
        values, tensors = load_training_state(
            directory, optimizers={"optimizer": self.optimizer} if self.optimizer else {},
            generators={"data": self.generator})
        self.examples = int(values["examples"])
        saved = values["epoch"]
        self.epoch = None if saved is None else EpochState(tensors["order"], saved["position"], saved["losses"],
                                                           saved["correct"], saved["seen"])

    def artifacts(self, directory: Path) -> list[Path]:
        from lab_backbones.plots import confusion_matrix_png, predictions_png

        x, y = self.splits["test"]
        predicted = self.predict(x.cpu().numpy())
        truth = y.cpu().numpy()
        if self.classes:
            return [confusion_matrix_png(truth, predicted, self.classes, directory / "confusion_matrix.png")]
        return [predictions_png(truth, predicted, directory / "predictions.png")]
