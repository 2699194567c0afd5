"""Pictures of a backbone's test predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_matrix_png(truth: np.ndarray, predicted: np.ndarray, classes: int, path: Path) -> Path:
    plt = _pyplot()
    counts = np.zeros((classes, classes), dtype=int)
    np.add.at(counts, (truth, predicted), 1)
    figure, axes = plt.subplots(figsize=(5, 4.5), dpi=100)
    image = axes.imshow(counts, cmap="Blues")
    for (row, column), count in np.ndenumerate(counts):
        if count:
            axes.text(column, row, str(count), ha="center", va="center", fontsize=8,
                      color="white" if count > counts.max() / 2 else "black")
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(f"test accuracy {np.mean(truth == predicted):.3f}")
    axes.set_xticks(range(classes))
    axes.set_yticks(range(classes))
    figure.colorbar(image)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def predictions_png(truth: np.ndarray, predicted: np.ndarray, path: Path) -> Path:
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5, 5), dpi=100)
    axes.scatter(truth, predicted, s=6, alpha=0.6)
    low, high = float(min(truth.min(), predicted.min())), float(max(truth.max(), predicted.max()))
    axes.plot([low, high], [low, high], color="grey", linestyle="--", label="perfect")
    axes.set_xlabel("true")
    axes.set_ylabel("predicted")
    axes.set_title(f"test MSE {np.mean((truth - predicted) ** 2):.4f}")
    axes.legend(loc="best")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
