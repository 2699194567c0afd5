"""Tiny numpy drawing for the games' ``rgb_array`` frames (no pygame, no display: fast and headless)."""

from __future__ import annotations

import numpy as np

Color = tuple[int, int, int]


def canvas(height: int, width: int, color: Color) -> np.ndarray:
    """A new (height, width, 3) uint8 frame filled with ``color``."""
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[:] = color
    return frame


def rect(frame: np.ndarray, top: int, left: int, height: int, width: int, color: Color) -> None:
    """Fill an axis-aligned rectangle, clipped to the frame."""
    bottom, right = min(top + height, frame.shape[0]), min(left + width, frame.shape[1])
    frame[max(top, 0):bottom, max(left, 0):right] = color


def disc(frame: np.ndarray, center_y: float, center_x: float, radius: float, color: Color) -> None:
    """Fill a disc, clipped to the frame."""
    top, bottom = max(int(center_y - radius), 0), min(int(center_y + radius) + 1, frame.shape[0])
    left, right = max(int(center_x - radius), 0), min(int(center_x + radius) + 1, frame.shape[1])
    if top >= bottom or left >= right:
        return
    ys, xs = np.ogrid[top:bottom, left:right]
    inside = (ys - center_y) ** 2 + (xs - center_x) ** 2 <= radius**2
    frame[top:bottom, left:right][inside] = color
