"""Pictures of a run, drawn with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def plot_learning_curve(evaluations: list[tuple[int, Mapping[str, float]]], score_key: str,
                        target: float | None, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [step for step, _ in evaluations]
    scores = [metrics[score_key] for _, metrics in evaluations]
    std_key = score_key.replace("mean", "std")
    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    axes.plot(steps, scores, marker="o", label=f"eval {score_key}")
    if std_key != score_key and evaluations and all(std_key in m for _, m in evaluations):
        stds = [metrics[std_key] for _, metrics in evaluations]
        axes.fill_between(steps, [s - d for s, d in zip(scores, stds, strict=True)],
                          [s + d for s, d in zip(scores, stds, strict=True)], alpha=0.2)
    if target is not None:
        axes.axhline(target, color="grey", linestyle="--", label=f"solved ({target:g})")
    axes.set_xlabel("step")
    axes.set_ylabel(score_key)
    axes.legend(loc="best")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
