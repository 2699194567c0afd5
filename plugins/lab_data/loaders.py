"""Loaders of the built-in datasets: fixed, seeded train/validation/test splits (70/15/15).

The splits depend on SPLIT_SEED only, never on a run's seed, so every run and every model sees the same test set.
"""

from __future__ import annotations

import numpy as np

from lab.api import Dataset

SPLIT_SEED = 0
VALIDATION, TEST = 0.15, 0.15


def split(name: str, x: np.ndarray, y: np.ndarray, *, classes: int | None) -> Dataset:
    """Shuffle and split into train/val/test, stratified by class for classification."""
    from sklearn.model_selection import train_test_split

    stratify = y if classes else None
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=TEST, random_state=SPLIT_SEED,
                                                      stratify=stratify)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=VALIDATION / (1 - TEST), random_state=SPLIT_SEED,
        stratify=y_rest if classes else None)
    return Dataset(name, x_train, y_train, x_val, y_val, x_test, y_test, split_seed=SPLIT_SEED, classes=classes)


def _digit_images() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images / 16.0).astype(np.float32), digits.target.astype(np.int64)


def digits() -> Dataset:
    images, labels = _digit_images()
    return split("digits", images[:, None, :, :], labels, classes=10)


def digits_rows() -> Dataset:
    images, labels = _digit_images()
    return split("digits_rows", images, labels, classes=10)  # (N, 8 steps, 8 features): same order, same splits


def moons() -> Dataset:
    """4000 points, so that a 600-point test split measures a generator's MMD^2 well below the targets (with
    150 points the estimate's own noise was as large as the gaps being judged); noise 0.1 keeps the moons' shape."""
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=4000, noise=0.1, random_state=SPLIT_SEED)
    return split("moons", x.astype(np.float32), y.astype(np.int64), classes=2)


def circles() -> Dataset:
    from sklearn.datasets import make_circles

    x, y = make_circles(n_samples=1000, noise=0.1, factor=0.5, random_state=SPLIT_SEED)
    return split("circles", x.astype(np.float32), y.astype(np.int64), classes=2)


def swiss_roll(samples: int = 4000) -> Dataset:
    """The classic 2-D swiss roll (the x-z plane of scikit-learn's 3-D one), scaled to about [-1, 1.5] so the
    same kernel bandwidths suit it and moons; y is the position t along the roll."""
    from sklearn.datasets import make_swiss_roll

    x, t = make_swiss_roll(n_samples=samples, noise=0.5, random_state=SPLIT_SEED)
    points = (x[:, [0, 2]] / 10.0).astype(np.float32)
    return split("swiss_roll", points, t.astype(np.float32), classes=None)


def sine(windows: int = 2000, length: int = 32) -> Dataset:
    """Windows of noisy sines with random frequency, phase and amplitude; the target is the next value."""
    rng = np.random.default_rng(SPLIT_SEED)
    frequency = rng.uniform(0.05, 0.3, size=(windows, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(windows, 1))
    amplitude = rng.uniform(0.5, 1.5, size=(windows, 1))
    t = np.arange(length + 1)[None, :]
    series = amplitude * np.sin(2 * np.pi * frequency * t + phase) + rng.normal(0, 0.05, size=(windows, length + 1))
    series = series.astype(np.float32)
    return split("sine", series[:, :length, None], series[:, length], classes=None)


def goog(length: int = 32) -> Dataset:
    """Google's daily adjusted closes, 2004-08-19 to 2008-10-14 (matplotlib's sample data): from 32 days of log
    prices relative to the last one, predict the next day's log return. Split in time order, not shuffled:
    the model is tested on the most recent 15%, as a forecaster would be."""
    import matplotlib.cbook

    prices = matplotlib.cbook.get_sample_data("goog.npz")["price_data"]["adj_close"].astype(np.float64)
    log_prices = np.log(prices)
    windows = np.lib.stride_tricks.sliding_window_view(log_prices, length + 1)
    relative = windows - windows[:, length - 1 : length]  # each window seen from its last day
    x = (relative[:, :length, None] * 10).astype(np.float32)  # scaled: daily moves are a few percent
    y = (relative[:, length] * 10).astype(np.float32)
    train_end = int(len(x) * (1 - VALIDATION - TEST))
    val_end = int(len(x) * (1 - TEST))
    return Dataset("goog", x[:train_end], y[:train_end], x[train_end:val_end], y[train_end:val_end],
                   x[val_end:], y[val_end:], split_seed=SPLIT_SEED)
