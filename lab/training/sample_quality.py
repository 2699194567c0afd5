"""How samples of a generator are judged: one set of metrics for every generator, built-in or not, each next to
a floor and a ceiling on the same data, so a number says how far a model is from real data and from knowing nothing.

- Images (a labelled image dataset, ``(c, h, w)`` in [0, 1]): the Frechet distance (``fd``) between features of a
  small classifier that lab trains deterministically on the dataset's training split (seed 0, one thread, about
  five seconds on digits) and caches; k-NN ``precision`` and ``recall`` (Kynkaanniemi et al., 2019, k=3) in the
  same feature space; ``class_coverage``, the share of classes the classifier sees at least half as often as
  uniform. Floor: real training images judged the same way; ceiling: independent-pixel samples (each pixel drawn
  from its own marginal), a model that knows no structure at all. ``fd_gap_closed`` = (ceiling - fd) /
  (ceiling - floor): 1 is as good as real data, 0 no better than independent pixels.
- Points (any other shape, e.g. 2-D moons): the unbiased MMD^2 (``mmd2``) with a Gaussian kernel of bandwidth 0.2
  against the split's points; floor: training points; ceiling: one Gaussian fitted to the training split;
  ``mmd2_ratio_to_ceiling`` = mmd2 / ceiling.
- ``score``, the number the runner maximises to keep the best model: ``-fd`` on images, ``-mmd2`` on points.

Estimator sizes: the floor uses as many training examples as there are samples; precision and recall compare the
samples with at most as many references. The built-ins judge ``eval_samples`` samples (1000 by default) drawn with
one fixed seed at every evaluation against the validation split, and at the end against the test split with the
baselines. Use the same count to compare with them. Plugins reach all of this through ``lab.api``
(:class:`SampleJudge`, :func:`judge_samples`, and the estimators themselves).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from torch import nn


class Splits(Protocol):
    """What judging reads from a dataset (``lab.api.Dataset`` has all of it)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    x_test: np.ndarray
    classes: int | None


BANDWIDTH = 0.2
"""Kernel bandwidth of MMD^2, in data units (moons and swiss_roll span about 2 to 3 units)."""
NEIGHBOURS = 3
"""k of the k-NN manifolds of precision and recall, as in Kynkaanniemi et al."""
BASELINE_SEED = 12345
FEATURES_VERSION = 2
"""Bumped when the feature network or its training changes, so cached weights are not reused."""


# ------------------------------------------------------------------------------------------ distances


def mmd2(x: np.ndarray, y: np.ndarray, bandwidth: float = BANDWIDTH) -> float:
    """Unbiased MMD^2 between samples x (n, d) and y (m, d), kernel exp(-|a - b|^2 / (2 bandwidth^2))."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        squared = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T
        return np.exp(-np.maximum(squared, 0.0) / (2 * bandwidth**2))

    n, m = len(x), len(y)
    xx, yy = kernel(x, x), kernel(y, y)
    within_x = (xx.sum() - np.trace(xx)) / (n * (n - 1))
    within_y = (yy.sum() - np.trace(yy)) / (m * (m - 1))
    return float(within_x + within_y - 2 * kernel(x, y).mean())


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between Gaussians fitted to feature sets a and b."""
    from scipy import linalg

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():  # near-singular product: regularise as the FID reference code does
        offset = np.eye(len(cov_a)) * 1e-6
        root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    return float(((mean_a - mean_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * np.real(root)))


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = NEIGHBOURS) -> tuple[float, float]:
    """Precision: the share of fake samples inside the real manifold (the union of balls reaching each real
    sample's k-th nearest real neighbour); recall: the share of real samples inside the fake manifold."""

    def radii(points: np.ndarray) -> np.ndarray:
        distances = _distances(points, points)
        return np.sort(distances, axis=1)[:, k]  # column 0 is the point itself

    def inside(points: np.ndarray, centres: np.ndarray, radius: np.ndarray) -> float:
        return float((_distances(points, centres) <= radius[None, :]).any(axis=1).mean())

    real, fake = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)
    return inside(fake, real, radii(real)), inside(real, fake, radii(fake))


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    squared = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.maximum(squared, 0.0))


# ------------------------------------------------------------------------------------------ the feature network


def _feature_net(channels: int, classes: int) -> nn.ModuleDict:
    """A small classifier: ``body`` ends in a 64-unit layer, before the activation (no dead, constant units),
    whose output is the feature space of FD, precision and recall; ``head`` classifies from it."""
    from torch import nn

    body = nn.Sequential(
        nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
        nn.Linear(1024, 64),
    )
    return nn.ModuleDict({"body": body, "head": nn.Sequential(nn.ReLU(), nn.Dropout(0.3), nn.Linear(64, classes))})


def _digest(data: Splits) -> str:
    digest = hashlib.sha256(f"features-v{FEATURES_VERSION}".encode())
    for array in (data.x_train, data.y_train):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def feature_network(data: Splits) -> nn.ModuleDict:
    """The dataset's feature classifier: loaded from the cache, or trained (seed 0, one thread) and cached."""
    from safetensors.torch import load_model, save_model

    from lab.core.cache import cache_dir

    if not data.classes:
        raise ValueError(f"image metrics need a labelled image dataset to train their classifier; {data.name} has "
                         "no classes")
    path = cache_dir() / "features" / f"{data.name}-{_digest(data)}.safetensors"
    if path.is_file():
        net = _feature_net(data.x_train.shape[1], data.classes)
        load_model(net, str(path))
        return net.eval()
    net = _train_feature_network(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # concurrent runs each write whole files
    save_model(net, str(temporary))
    os.replace(temporary, path)
    return net.eval()


def _train_feature_network(data: Splits, epochs: int = 30) -> nn.ModuleDict:
    """Deterministic: fixed seed, one thread, fixed order; about five seconds on digits."""
    import torch
    from torch import nn

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        # The whole training under its own seed: initial weights, order and dropout masks never depend on
        # what the process did before (a run's seed, an earlier model).
        with torch.random.fork_rng():
            torch.manual_seed(0)
            generator = torch.Generator().manual_seed(0)
            net = _feature_net(data.x_train.shape[1], int(data.classes or 0))
            x, y = torch.as_tensor(data.x_train, dtype=torch.float32), torch.as_tensor(data.y_train)
            optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
            net.train()
            for _ in range(epochs):
                order = torch.randperm(len(x), generator=generator)
                for start in range(0, len(x), 64):
                    index = order[start:start + 64]
                    loss = nn.functional.cross_entropy(net["head"](net["body"](x[index])), y[index])
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return net


# ------------------------------------------------------------------------------------------ judges


class SampleJudge:
    """Judges samples of one dataset against its validation or test split, the way every built-in generator is.

    ``transform`` maps the dataset's examples to what the model learns (binarized digits for a Bernoulli VAE),
    so references, floor and ceiling are in the model's own terms. Image datasets (examples of shape
    ``(c, h, w)``) get the image metrics, any other shape the point metrics. Make one judge per run and reuse it:
    it keeps the feature network and each split's reference features."""

    def __init__(self, data: Splits, transform: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.data = data
        self.transform = transform or (lambda examples: examples)
        self.is_image = np.ndim(data.x_train) == 4
        self.classes = int(data.classes or 0)
        self.net = feature_network(data) if self.is_image else None
        self._references: dict[str, np.ndarray] = {}

    def metrics(self, samples: np.ndarray, split: str = "val", *, baselines: bool = False) -> dict[str, float]:
        """Every sample-quality metric the built-ins log for ``samples`` against ``split`` (``val`` or ``test``),
        with ``score``; ``baselines=True`` adds the split's floor and ceiling and how much of the gap the samples
        close (what the built-ins log as ``test/*``)."""
        samples = np.asarray(samples)
        if split not in ("val", "test"):
            raise ValueError(f"split must be 'val' or 'test', not {split!r}")
        if len(samples) < 2 or samples.shape[1:] != np.shape(self.data.x_train)[1:]:
            raise ValueError(f"samples must be at least 2 examples of shape {np.shape(self.data.x_train)[1:]}, "
                             f"got an array of shape {samples.shape}")
        metrics = self._judge(samples, split)
        metrics["score"] = -metrics["fd"] if self.is_image else -metrics["mmd2"]
        if baselines:
            metrics.update(self.baselines(split, len(samples)))
            if self.is_image:
                metrics["fd_gap_closed"] = (metrics["fd_ceiling"] - metrics["fd"]) / (
                    metrics["fd_ceiling"] - metrics["fd_floor"])
            else:
                metrics["mmd2_ratio_to_ceiling"] = metrics["mmd2"] / metrics["mmd2_ceiling"]
        return metrics

    def baselines(self, split: str, samples: int) -> dict[str, float]:
        """The floor (real training examples) and ceiling (independent pixels; one Gaussian for points) of the
        metrics against ``split``, each from ``samples`` examples."""
        train = self.transform(np.asarray(self.data.x_train))
        if self.is_image:
            floor = self._judge(train[:samples], split)
            ceiling = self._judge(independent_pixels(train, samples), split)
            return {"fd_floor": floor["fd"], "fd_ceiling": ceiling["fd"], "precision_floor": floor["precision"],
                    "recall_floor": floor["recall"], "precision_ceiling": ceiling["precision"],
                    "recall_ceiling": ceiling["recall"]}
        train = train.astype(np.float64)
        gaussian = np.random.default_rng(BASELINE_SEED).multivariate_normal(
            train.mean(0), np.cov(train, rowvar=False), size=samples)
        reference = self._split(split)
        return {"mmd2_floor": mmd2(train[:samples], reference), "mmd2_ceiling": mmd2(gaussian, reference)}

    def features(self, images: np.ndarray) -> np.ndarray:
        """The feature-network embedding (n, 64) of images (n, c, h, w) in [0, 1]."""
        import torch

        assert self.net is not None, "features of an image dataset only"
        with torch.no_grad():
            batches = [self.net["body"](torch.as_tensor(images[i:i + 1000], dtype=torch.float32))
                       for i in range(0, len(images), 1000)]
            return torch.cat(batches).numpy()

    def _split(self, split: str) -> np.ndarray:
        return self.transform(np.asarray(getattr(self.data, f"x_{split}")))

    def _reference(self, split: str) -> np.ndarray:
        if split not in self._references:
            self._references[split] = self.features(self._split(split))
        return self._references[split]

    def _judge(self, samples: np.ndarray, split: str) -> dict[str, float]:
        if not self.is_image:
            return {"mmd2": mmd2(samples, self._split(split))}
        import torch

        reference = self._reference(split)
        features = self.features(samples)
        precision, recall = precision_recall(reference, features[: len(reference)])
        with torch.no_grad():
            predicted = self.net["head"](torch.as_tensor(features)).argmax(1).numpy()
        shares = np.bincount(predicted, minlength=self.classes) / len(predicted)
        return {"fd": frechet_distance(features, reference), "precision": precision, "recall": recall,
                # classes drawn at least half as often as uniform: mode collapse shows as a drop
                "class_coverage": float((shares >= 0.5 / self.classes).mean())}


def judge_samples(data: Splits, samples: np.ndarray, split: str = "val", *, baselines: bool = False,
                  transform: Callable[[np.ndarray], np.ndarray] | None = None) -> dict[str, float]:
    """One call: :meth:`SampleJudge.metrics` of ``samples`` against ``split`` of ``data`` (a new judge each call;
    keep a :class:`SampleJudge` to judge many times)."""
    return SampleJudge(data, transform).metrics(samples, split, baselines=baselines)


def independent_pixels(images: np.ndarray, count: int) -> np.ndarray:
    """Samples of the independent-pixel model: every pixel drawn from that pixel's values in ``images``."""
    rng = np.random.default_rng(BASELINE_SEED)
    flat = images.reshape(len(images), -1)
    rows = rng.integers(0, len(flat), size=(count, flat.shape[1]))
    return flat[rows, np.arange(flat.shape[1])].reshape(count, *images.shape[1:])


# ------------------------------------------------------------------------------------------ likelihood baselines


def independent_bernoulli_nll(train: np.ndarray, test: np.ndarray) -> float:
    """Nats per example of independent per-pixel Bernoullis fitted to binary ``train`` (add-one smoothing)."""
    flat_train, flat_test = train.reshape(len(train), -1), test.reshape(len(test), -1)
    p = (flat_train.sum(0) + 1.0) / (len(flat_train) + 2.0)
    return float(-(flat_test * np.log(p) + (1 - flat_test) * np.log(1 - p)).sum(1).mean())


def gaussian_nll(train: np.ndarray, test: np.ndarray) -> float:
    """Nats per example of one full-covariance Gaussian fitted to ``train``."""
    from scipy.stats import multivariate_normal

    flat_train, flat_test = train.reshape(len(train), -1), test.reshape(len(test), -1)
    covariance = np.cov(flat_train, rowvar=False) + 1e-6 * np.eye(flat_train.shape[1])
    return float(-multivariate_normal(flat_train.mean(0), covariance).logpdf(flat_test).mean())
