"""Pictures of samples, shared by the runner, ``lab sample`` and plugins (exported through ``lab.api``).

Both return an RGB ``uint8`` array (height, width, 3), which MLflow logs as an image and PIL saves as PNG.
numpy, PIL and matplotlib are imported inside the functions.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def image_grid(images: Any, columns: int | None = None, scale: int | None = None) -> Any:
    """Tile images (n, channels, height, width) with values in [0, 1] into one grid with 1-pixel gaps.

    Small images are enlarged (nearest neighbour) so an 8x8 digit is visible: ``scale`` defaults to whatever
    makes each tile at least 32 pixels high."""
    import numpy as np

    images = np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"image_grid takes (n, 1 or 3, height, width) arrays, got shape {images.shape}")
    count, channels, height, width = images.shape
    scale = scale or max(1, math.ceil(32 / height))
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    tiles = images.repeat(scale, axis=2).repeat(scale, axis=3)
    tile_h, tile_w = height * scale, width * scale
    grid = np.full((rows * (tile_h + 1) + 1, columns * (tile_w + 1) + 1, channels), 0.5, dtype=np.float32)
    for i, tile in enumerate(tiles):
        top, left = 1 + (i // columns) * (tile_h + 1), 1 + (i % columns) * (tile_w + 1)
        grid[top:top + tile_h, left:left + tile_w] = tile.transpose(1, 2, 0)
    grid = (grid * 255).round().astype(np.uint8)
    return np.repeat(grid, 3, axis=2) if channels == 1 else grid


def scatter_plot(points: Any, reference: Any | None = None, title: str = "") -> Any:
    """Samples (n, 2) as orange dots over ``reference`` points (the data) in grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"scatter_plot takes (n, 2) points, got shape {points.shape}")
    figure, axes = plt.subplots(figsize=(4, 4), dpi=100)
    if reference is not None:
        reference = np.asarray(reference)
        axes.scatter(reference[:, 0], reference[:, 1], s=4, c="grey", alpha=0.5, label="data")
        low, high = reference.min(axis=0), reference.max(axis=0)
        margin = 0.25 * (high - low)
        axes.set_xlim(low[0] - margin[0], high[0] + margin[0])  # samples far off the data stay off the picture
        axes.set_ylim(low[1] - margin[1], high[1] + margin[1])
    axes.scatter(points[:, 0], points[:, 1], s=4, c="tab:orange", alpha=0.7, label="samples")
    axes.legend(loc="upper right", fontsize=8, markerscale=3)
    if title:
        axes.set_title(title, fontsize=9)
    figure.tight_layout()
    figure.canvas.draw()
    picture = np.asarray(figure.canvas.buffer_rgba())[:, :, :3].copy()
    plt.close(figure)
    return picture


def picture_of_samples(samples: Any, reference: Any | None = None) -> Any:
    """A grid for images (n, c, h, w), a scatter plot for 2-D points (n, 2)."""
    import numpy as np

    shape = np.shape(samples)
    if len(shape) == 4:
        return image_grid(samples)
    if len(shape) == 2 and shape[1] == 2:
        return scatter_plot(samples, reference)
    raise ValueError(f"no picture for samples of shape {shape}: images (n, c, h, w) or 2-D points (n, 2)")


def save_png(picture: Any, path: Path) -> Path:
    """Write an RGB uint8 array as a PNG, atomically (a temporary file renamed into place)."""
    import os

    from PIL import Image

    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        Image.fromarray(picture).save(temporary, format="PNG")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path
