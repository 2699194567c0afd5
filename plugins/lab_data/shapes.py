"""``shapes``: seeded 16x16 grey images of simple shapes, generated in numpy (nothing is downloaded).

Image models can be tried at more than digits' 8x8 on it; its labels (the kind of shape) also make it a
classification set, and let generative metrics use a classifier's features.
"""

from __future__ import annotations

import numpy as np

from lab.api import Dataset
from lab_data.loaders import SPLIT_SEED, split

SIZE = 16
KINDS = ("disk", "square", "triangle", "cross")


def _mask(kind: str, rows: np.ndarray, cols: np.ndarray, cy: float, cx: float, radius: float) -> np.ndarray:
    dy, dx = rows - cy, cols - cx
    if kind == "disk":
        return dy**2 + dx**2 <= radius**2
    if kind == "square":
        return (np.abs(dy) <= radius * 0.85) & (np.abs(dx) <= radius * 0.85)
    if kind == "triangle":  # apex up: the half-width grows linearly from the top edge to the base
        height = (dy + radius) / (2 * radius)
        return (height >= 0) & (height <= 1) & (np.abs(dx) <= height * radius)
    thickness = max(radius / 3, 0.75)  # cross
    return ((np.abs(dy) <= thickness) & (np.abs(dx) <= radius)) | ((np.abs(dx) <= thickness) & (np.abs(dy) <= radius))


def draw(kind: str, cy: float, cx: float, radius: float, brightness: float) -> np.ndarray:
    """One SIZE x SIZE image in [0, 1] of ``kind`` centred at (cy, cx)."""
    rows, cols = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5
    return (_mask(kind, rows, cols, cy, cx, radius) * brightness).astype(np.float32)


def shapes(per_kind: int = 500) -> Dataset:
    rng = np.random.default_rng(SPLIT_SEED)
    images, labels = [], []
    for label, kind in enumerate(KINDS):
        for _ in range(per_kind):
            radius = rng.uniform(3.0, 6.0)
            cy, cx = rng.uniform(radius + 0.5, SIZE - radius - 0.5, size=2)
            images.append(draw(kind, cy, cx, radius, rng.uniform(0.5, 1.0)))
            labels.append(label)
    x = np.stack(images)[:, None, :, :]
    return split("shapes", x, np.array(labels, dtype=np.int64), classes=len(KINDS))
