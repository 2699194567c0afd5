"""Render one episode of a policy to an animated GIF (the same code serves every agent run's artifact)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np

MAX_FRAMES = 200  # longer episodes keep every k-th frame (and only those are rendered)
MAX_WIDTH = 320
COLORS = 64


def record_episode(env_id: str, policy: Any, path: Path, *, seed: int,
                   normalize: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[float, int]:
    """Play one deterministic episode, write it to ``path`` as a GIF; return (return, length)."""
    # Headless rendering: pygame (classic control, Box2D) must not look for a display or a sound card.
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    env = gymnasium.make(env_id, render_mode="rgb_array")
    limit = env.spec.max_episode_steps if env.spec and env.spec.max_episode_steps else 1000
    stride = max(1, -(-limit // MAX_FRAMES))
    frames: list[np.ndarray] = []
    total, length = 0.0, 0
    try:
        obs, _ = env.reset(seed=seed)
        frames.append(env.render())
        done = False
        while not done:
            action, _ = policy.predict(normalize(obs) if normalize else obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total, length, done = total + float(reward), length + 1, terminated or truncated
            if length % stride == 0 or done:
                frames.append(env.render())
        fps = env.metadata.get("render_fps", 30)
    finally:
        env.close()
    write_gif(frames, path, frame_ms=int(1000 * stride / fps))
    return total, length


def write_gif(frames: list[np.ndarray], path: Path, *, frame_ms: int) -> None:
    """Frames to a looping GIF: subsampled to MAX_WIDTH, one shared palette (fast, small, no flicker)."""
    from PIL import Image

    factor = -(-frames[0].shape[1] // MAX_WIDTH)
    images = [Image.fromarray(np.ascontiguousarray(frame[::factor, ::factor])) for frame in frames]
    # The palette comes from first, middle and last frames together, so late colours are not lost.
    sample = [images[0], images[len(images) // 2], images[-1]]
    strip = Image.new("RGB", (sample[0].width, sample[0].height * len(sample)))
    for i, image in enumerate(sample):
        strip.paste(image, (0, i * image.height))
    palette = strip.quantize(colors=COLORS, method=Image.Quantize.FASTOCTREE)
    indexed = [image.quantize(palette=palette, dither=Image.Dither.NONE) for image in images]
    indexed[0].save(path, save_all=True, append_images=indexed[1:], duration=frame_ms, loop=0)
